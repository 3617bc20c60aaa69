package auth_test

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/auth"
	"github.com/stewardhq/steward/internal/auth/authtest"
	"github.com/stewardhq/steward/internal/store"
)

// BenchmarkAuthenticate is the cost authentication adds to every API
// request: one indexed lookup of the token's hash on the reader pool
// (the last-used write happens at most once a minute per token).
func BenchmarkAuthenticate(b *testing.B) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	db, err := store.Open(b.Context(), filepath.Join(b.TempDir(), "steward.db"), logger)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	for i := range 1000 { // a realistic number of tokens besides the one used
		authtest.Token(b, db, "other-"+strconv.Itoa(i), steward.RoleReader)
	}
	token := authtest.Token(b, db, "bench", steward.RoleReader)
	a := auth.NewAuthenticator(db, logger)
	req := httptest.NewRequest("GET", "/api/v1/recommendations", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	b.ResetTimer()
	for b.Loop() {
		if _, err := a.Authenticate(req); err != nil {
			b.Fatal(err)
		}
	}
}

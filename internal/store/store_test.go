package store_test

import (
	"testing"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
	"github.com/stretchr/testify/require"
)

// TestStore runs the behaviour suite on every backend.
func TestStore(t *testing.T) {
	t.Parallel()
	storetest.Run(t)
}

func TestReadyAfterClose(t *testing.T) {
	t.Parallel()
	storetest.ForEachBackendURL(t, func(t *testing.T, _ storetest.Backend, url string) {
		db, err := store.Open(t.Context(), url, storetest.Logger(t))
		require.NoError(t, err)
		require.NoError(t, db.Ready(t.Context()))
		require.NoError(t, db.Close())
		storetest.RequireCode(t, db.Ready(t.Context()), steward.CodeUnavailable)
	})
}

func TestRebindDollar(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{name: "None", in: `SELECT 1`, want: `SELECT 1`},
		{name: "Several", in: `SELECT a FROM t WHERE x = ? AND y IN (?, ?)`, want: `SELECT a FROM t WHERE x = $1 AND y IN ($2, $3)`},
		{name: "SkipsStringLiterals", in: `SELECT '?' || x FROM t WHERE s = 'it''s?' AND y = ?`, want: `SELECT '?' || x FROM t WHERE s = 'it''s?' AND y = $1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, store.RebindDollar(tt.in))
		})
	}
}

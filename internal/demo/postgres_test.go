package demo_test

import (
	"bytes"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward/internal/demo"
	"github.com/stewardhq/steward/internal/store/pgtest"
)

// TestCheckOnPostgres runs the headless demo on an empty PostgreSQL
// database: the same twelve checks pass, the output never shows the
// database's password, and a second run on the database, which the first
// filled, is refused.
func TestCheckOnPostgres(t *testing.T) {
	t.Parallel()
	db := pgtest.URL(t)
	var out bytes.Buffer
	err := demo.Run(t.Context(), demo.Options{Check: true, Addr: "127.0.0.1:0", EmulatorAddr: "127.0.0.1:0", Dir: t.TempDir(), DatabaseURL: db}, &out)
	require.NoError(t, err, out.String())
	require.Contains(t, out.String(), "13 passed, 0 failed")
	if u, err := url.Parse(db); err == nil {
		if p, ok := u.User.Password(); ok {
			require.NotContains(t, out.String(), p)
		}
	}

	out.Reset()
	err = demo.Run(t.Context(), demo.Options{Check: true, Addr: "127.0.0.1:0", EmulatorAddr: "127.0.0.1:0", Dir: t.TempDir(), DatabaseURL: db}, &out)
	require.ErrorContains(t, err, "already holds Steward data")
}

package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/pgtest"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// runRoot runs the CLI with args and returns its error and output.
func runRoot(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := newRootCommand(&out, &errOut)
	root.SetArgs(args)
	err := root.ExecuteContext(t.Context())
	return out.String() + errOut.String(), err
}

// TestServeBusyPortLeavesNothing: `steward serve` on an address another
// process holds fails with that address before it writes anything.
func TestServeBusyPortLeavesNothing(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { busy.Close() })
	dir := t.TempDir()
	_, err = runRoot(t, "serve", "--addr", busy.Addr().String(), "--db", filepath.Join(dir, "steward.db"))
	require.ErrorContains(t, err, "listen on "+busy.Addr().String())
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries, "no database, key file, spool directory or lock file")
}

// TestMigrateRefusedWhileServing: migrate changes the schema, so it refuses
// while a server uses the database; tokens on the file keep working.
func TestMigrateRefusedWhileServing(t *testing.T) {
	t.Parallel()
	srv := startServerOn(t, storetest.SQLite) // the SQLite file lock
	db := srv.DB.Path()
	_, err := runRoot(t, "migrate", "--db", db)
	require.ErrorContains(t, err, "database "+db+" is in use by steward serve (PID ")

	out, err := runRoot(t, "tokens", "create", "--db", db, "--name", "ops", "--role", "owner")
	require.NoError(t, err, out)

	require.NoError(t, srv.Shutdown(context.Background()))
	out, err = runRoot(t, "migrate", "--db", db)
	require.NoError(t, err, out)
}

// TestMigrateRefusedWhileServingOnPostgres: on PostgreSQL, which processes
// share, migrate refuses while a serve process's heartbeat is fresh, names
// it, and runs once it has stopped.
func TestMigrateRefusedWhileServingOnPostgres(t *testing.T) {
	url := pgtest.URL(t)
	t.Setenv("STEWARD_SECRET_KEY", base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{3}, 32)))
	db := storetest.MustOpenURL(t, url)
	ctx := t.Context()
	serving := store.Process{ClientID: "steward_web1_4242_1", Host: "web1", PID: 4242}
	require.NoError(t, db.Heartbeat(ctx, serving))

	_, err := runRoot(t, "migrate", "--db", url)
	require.ErrorContains(t, err, "is in use by 1 steward serve process(es): web1 (pid 4242, started ")

	require.NoError(t, db.EndProcess(ctx, serving.ClientID)) // a clean stop
	out, err := runRoot(t, "migrate", "--db", url)
	require.NoError(t, err, out)
}

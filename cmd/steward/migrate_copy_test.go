package main

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/pgtest"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// copySource writes a small installation into a new SQLite file through
// the store and closes it, as a stopped server leaves it.
func copySource(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "steward.db")
	db, err := store.Open(t.Context(), path, nil)
	require.NoError(t, err)
	var obs []steward.Observation
	for i := range 12 {
		obs = append(obs, storetest.Observation("rec-1", fmt.Sprintf("/subscriptions/s1/vm-%d", i), steward.StatusUnhealthy))
	}
	storetest.Apply(t, db, time.Time{}, obs...)
	as, _, err := db.FindAssessments(t.Context(), store.AssessmentFilter{Limit: 1})
	require.NoError(t, err)
	in := storetest.Integration(t, db, "prod", "/subscriptions/s1")
	storetest.ServiceNowAssignment(t, db, as[0].ID, in.ID, "alice@example.com", time.Now().Add(24*time.Hour))
	require.NoError(t, db.Close())
	return path
}

// TestMigrateCopy: the command copies an installation, prints the
// verification table, and refuses a second copy into the filled target.
func TestMigrateCopy(t *testing.T) {
	t.Parallel()
	from, to := copySource(t), pgtest.URL(t)
	out, err := runRoot(t, "migrate", "copy", "--from", from, "--to", to, "--batch", "5")
	require.NoError(t, err, out)
	require.Contains(t, out, "Copying "+from)
	require.Regexp(t, `(?m)^  assessment +12 rows `, out)
	require.Regexp(t, `(?m)^TABLE +ROWS +CHECKSUM +MATCH$`, out)
	require.Regexp(t, `(?m)^assessment +12 +[0-9a-f]{16} +yes$`, out)
	require.Regexp(t, `(?m)^ticket +1 +[0-9a-f]{16} +yes$`, out)
	require.Contains(t, out, "Not copied: river_leader")
	require.Regexp(t, `All \d+ tables match`, out)

	dst := storetest.MustOpenURL(t, to)
	tk, _, err := dst.FindTickets(t.Context(), store.TicketFilter{})
	require.NoError(t, err)
	require.Len(t, tk, 1)

	out, err = runRoot(t, "migrate", "copy", "--from", from, "--to", to)
	require.Error(t, err, out)
	require.ErrorContains(t, err, "already holds data: ")
	require.ErrorContains(t, err, "assessment (12 rows)")
}

// TestMigrateCopyMigratesAnOlderSource: a source at an older schema is
// migrated first, and the output says so.
func TestMigrateCopyMigratesAnOlderSource(t *testing.T) {
	t.Parallel()
	from := copySource(t)
	db, err := store.Open(t.Context(), from, nil)
	require.NoError(t, err)
	sv, err := db.Versions(t.Context())
	require.NoError(t, err)
	latest := sv.Latest()
	// Undo the latest migration by hand: drop what it created.
	undo := map[int][]string{
		17: {"DROP TABLE recommendation_scope_summary", "DROP TABLE resource_summary_scope", "DROP TABLE summary_scope"},
		18: {"DROP TABLE notification", "DROP TABLE notification_period", "DROP TABLE manager_mapping", "DROP TABLE owner_manager"},
		19: {"DROP TABLE governance_day", "DROP TABLE governance_snapshot", "DROP INDEX assignment_report",
			"ALTER TABLE assignment DROP COLUMN recommendation_id", "ALTER TABLE assignment DROP COLUMN resource_id"},
	}
	require.Contains(t, undo, latest, "say how to undo migration %04d here", latest)
	for _, stmt := range undo[latest] {
		_, err = db.Writer().ExecContext(t.Context(), stmt)
		require.NoError(t, err, stmt)
	}
	_, err = db.Writer().ExecContext(t.Context(), `DELETE FROM schema_migrations WHERE version = ?`, latest)
	require.NoError(t, err)
	require.NoError(t, db.Close())

	out, err := runRoot(t, "migrate", "copy", "--from", from, "--to", pgtest.URL(t))
	require.NoError(t, err, out)
	require.Contains(t, out, fmt.Sprintf("The source's schema was at migration %04d: migrated it to %04d first", latest-1, latest))
}

// TestMigrateCopyRefusals: not while a server runs on the source, not
// from a file that does not exist, not to a SQLite target.
func TestMigrateCopyRefusals(t *testing.T) {
	t.Parallel()
	srv := startServerOn(t, storetest.SQLite) // the SQLite file lock
	to := pgtest.URL(t)
	_, err := runRoot(t, "migrate", "copy", "--from", srv.DB.Path(), "--to", to)
	require.ErrorContains(t, err, "database "+srv.DB.Path()+" is in use by steward serve (PID ")
	require.NoError(t, srv.Shutdown(context.Background()))

	missing := filepath.Join(t.TempDir(), "none.db")
	_, err = runRoot(t, "migrate", "copy", "--from", missing, "--to", to)
	require.ErrorContains(t, err, "no SQLite database at "+missing)
	require.NoFileExists(t, missing)
	require.NoFileExists(t, missing+".lock")

	_, err = runRoot(t, "migrate", "copy", "--from", srv.DB.Path(), "--to", filepath.Join(t.TempDir(), "other.db"))
	require.ErrorContains(t, err, "--to must be a postgres:// URL")
}

// TestPrintChecks: a table that differs is shown with its first difference
// and counted, which makes the command fail.
func TestPrintChecks(t *testing.T) {
	var buf bytes.Buffer
	bad := printChecks(&buf, []store.TableCheck{
		{Table: "assessment", SourceRows: 3, TargetRows: 3, SourceSum: "aaaaaaaaaaaaaaaaaaaa", TargetSum: "bbbbbbbbbbbbbbbbbbbb",
			Difference: "row (id=2), column status: source \"Unhealthy\", target \"Healthy\""},
		{Table: "meta", SourceRows: 1, TargetRows: 1, SourceSum: "cccccccccccccccccccc", TargetSum: "cccccccccccccccccccc"},
		{Table: "ticket", SourceRows: 2, TargetRows: 1, SourceSum: "dddddddddddddddddddd", TargetSum: "eeeeeeeeeeeeeeeeeeee",
			Difference: "row (assignment_id=9) is missing from the target"},
	})
	require.Equal(t, 2, bad)
	require.Regexp(t, `(?m)^assessment +3 +aaaaaaaaaaaaaaaa +NO: row \(id=2\), column status`, buf.String())
	require.Regexp(t, `(?m)^meta +1 +cccccccccccccccc +yes$`, buf.String())
	require.Regexp(t, `(?m)^ticket +2 \(target 1\) +dddddddddddddddd +NO: row \(assignment_id=9\) is missing`, buf.String())
}

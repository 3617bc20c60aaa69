package store_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/secret"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/pgtest"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// copyTestArgs is a job kind of the copy test's own.
type copyTestArgs struct {
	N    int    `json:"n"`
	Note string `json:"note"`
}

func (copyTestArgs) Kind() string { return "copy_test" }

// fillForCopy writes one of everything through the store: findings,
// assignments manual and ServiceNow, a ticket group (the foreign key cycle
// between assignment and ticket_group), sealed integration and source
// secrets, a rule, a token, audit entries, sync state; and River jobs in
// several states plus a paused queue.
func fillForCopy(t *testing.T, db *store.DB) {
	t.Helper()
	ctx := t.Context()
	var obs []steward.Observation
	for i := range 30 {
		status := steward.StatusUnhealthy
		if i%3 == 0 {
			status = steward.StatusHealthy
		}
		obs = append(obs, storetest.Observation(fmt.Sprintf("rec-%d", i%4), fmt.Sprintf("/subscriptions/s1/resourceGroups/rg/vm-%02d", i), status))
	}
	// A resource ID that sorts differently in byte order and in a
	// language's collation, so primary-key order is tested on text too.
	obs = append(obs, storetest.Observation("rec-0", "/subscriptions/s1/resourceGroups/rg/Zeta-é", steward.StatusUnhealthy))
	storetest.Apply(t, db, time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC), obs...)

	as, _, err := db.FindAssessments(ctx, store.AssessmentFilter{Statuses: []steward.AssessmentStatus{steward.StatusUnhealthy}, Limit: 100})
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(as), 10)
	due := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	storetest.Assignment(t, db, as[0].ID, "alice@example.com", due)
	storetest.Assignment(t, db, as[1].ID, "Bob@Example.com", due)

	in := storetest.Integration(t, db, "prod", "/subscriptions/s1")
	r := &steward.Rule{Name: "grouped", Scope: "/subscriptions/s1", Priority: 3, Enabled: true,
		When:  []steward.ConditionSet{{Severity: []steward.Severity{steward.SeverityHigh}}},
		Owner: steward.OwnerSource{Email: "team@example.com"}, DueInDays: 7,
		Ticket: &steward.RuleTicket{Integration: "prod", GroupBy: "recommendation"}}
	require.NoError(t, db.WithTx(ctx, func(tx *store.Tx) error { return tx.CreateRule(ctx, r, "test") }))
	for _, a := range as[2:6] {
		sn := storetest.ServiceNowAssignment(t, db, a.ID, in.ID, "carol@example.com", due)
		require.NoError(t, db.WithTx(ctx, func(tx *store.Tx) error {
			_, _, err := tx.JoinTicketGroup(ctx, sn.ID, r.ID)
			return err
		}))
	}
	require.NoError(t, db.RecordSyncStart(ctx, in.ID, "poll", time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC)))

	src := &store.SourceRecord{Source: steward.Source{Name: "azure", Kind: "defender", Scope: "/subscriptions/s1", Enabled: true,
		Settings: []byte(`{"tenant_id":"t1"}`)}, ScheduleEvery: time.Hour}
	require.NoError(t, db.WithTx(ctx, func(tx *store.Tx) error {
		return tx.CreateSource(ctx, src, store.SourceSecrets{"client_secret": secret.New("source-secret-1")}, "admin")
	}))
	hash := sha256.Sum256([]byte("token-secret"))
	var tokenID int64
	require.NoError(t, db.WithTx(ctx, func(tx *store.Tx) error {
		tok, err := tx.CreateToken(ctx, store.NewToken{Name: "ops", Role: steward.RoleOwner, SecretHash: hash[:], Prefix: "stw_abcd"}, "admin")
		if err != nil {
			return err
		}
		tokenID = tok.ID
		return tx.InsertAudit(ctx, &steward.AuditEvent{Actor: "admin", Action: "test.copied", Details: map[string]any{"n": 1.5}})
	}))
	session := sha256.Sum256([]byte("session-secret"))
	require.NoError(t, db.CreateSession(ctx, &store.Session{TokenID: tokenID, Name: "ops", Role: steward.RoleOwner,
		ExpiresAt: time.Now().Add(time.Hour)}, session[:]))
	// A rate that is not a whole number: REAL and DOUBLE PRECISION.
	_, err = db.Writer().ExecContext(ctx, `UPDATE integration SET requests_per_second = 0.1`)
	require.NoError(t, err)

	// Jobs: queued now and later, unique, tagged; then one made running
	// (as a crashed server leaves it) and one discarded with errors.
	client, err := river.NewClient(db.RiverDriver(), &river.Config{})
	require.NoError(t, err)
	require.NoError(t, db.WithTx(ctx, func(tx *store.Tx) error {
		for i := range 5 {
			opts := &river.InsertOpts{Queue: "itsm", Priority: 1 + i%4, Tags: []string{"copy", fmt.Sprintf("tag-%d", i)},
				Metadata: []byte(`{"m": 1.50, "k": "v"}`), UniqueOpts: river.UniqueOpts{ByArgs: true}}
			if i == 4 {
				opts.ScheduledAt = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
				opts.Tags = nil
			}
			if _, err := client.InsertTx(ctx, tx.SQL(), copyTestArgs{N: i, Note: "é\u2028<&>"}, opts); err != nil {
				return err
			}
		}
		return nil
	}))
	_, err = db.Writer().ExecContext(ctx, `UPDATE river_job SET state = 'running', attempt = 1,
		attempted_at = '2026-01-04 05:06:07.890', attempted_by = jsonb('["gone-client","gone-client-2"]')
		WHERE args ->> '$.n' = 1`)
	require.NoError(t, err)
	_, err = db.Writer().ExecContext(ctx, `UPDATE river_job SET state = 'discarded', attempt = 2, finalized_at = '2026-01-04 05:06:08.000',
		errors = jsonb('[{"at":"2026-01-04T05:06:07.89Z","attempt":1,"error":"boom","trace":"x"},{"at":"2026-01-04T05:06:08Z","attempt":2,"error":"again","trace":""}]')
		WHERE args ->> '$.n' = 2`)
	require.NoError(t, err)
	// An empty JSON array stays an empty array (not NULL).
	_, err = db.Writer().ExecContext(ctx, `UPDATE river_job SET attempted_by = jsonb('[]') WHERE args ->> '$.n' = 3`)
	require.NoError(t, err)
	_, err = db.Writer().ExecContext(ctx, `INSERT INTO river_queue (name, created_at, metadata, paused_at, updated_at)
		VALUES ('itsm', '2026-01-02 03:04:05.678', jsonb('{"x":1}'), '2026-01-02 03:04:06.000', '2026-01-02 03:04:06')`)
	require.NoError(t, err)
}

// TestCopyToPostgres: a SQLite installation copied into an empty
// PostgreSQL database reads back the same through the store API and
// River, verifies table by table, refuses a second copy, and a row changed
// afterwards fails the verification.
func TestCopyToPostgres(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	box := storetest.Box(t)
	src := storetest.MustOpenBackend(t, storetest.SQLite)
	src.SetSecretBox(box)
	fillForCopy(t, src)
	dstURL := pgtest.URL(t)
	dst := storetest.MustOpenURL(t, dstURL)
	// The secret key must be the same on both sides: sealed secrets are
	// copied as they are.
	dst.SetSecretBox(box)

	schema := targetSchema(t, dst)
	var progress []store.CopyProgress
	report, err := store.Copy(ctx, src, dst, store.CopyOptions{BatchRows: 7, Progress: func(p store.CopyProgress) { progress = append(progress, p) }})
	require.NoError(t, err)
	require.EqualValues(t, 1, report.RescuedJobs)
	require.Positive(t, report.Sequences)
	var skipped []string
	for _, s := range report.Skipped {
		skipped = append(skipped, s.Table)
	}
	require.ElementsMatch(t, []string{"river_migration", "river_leader", "river_notification"}, skipped)
	copied := map[string]int64{}
	for _, tc := range report.Tables {
		copied[tc.Table] = tc.Rows
	}
	require.EqualValues(t, 31, copied["assessment"])
	require.EqualValues(t, 5, copied["river_job"])
	require.Positive(t, copied["ticket_group"])
	require.EqualValues(t, 4, copied["ticket"])
	// Progress: batches of 7 for the assessments, then finished.
	var assessment []store.CopyProgress
	for _, p := range progress {
		if p.Table == "assessment" {
			assessment = append(assessment, p)
		}
	}
	require.Equal(t, []int64{0, 7, 14, 21, 28, 31, 31}, func() (d []int64) {
		for _, p := range assessment {
			d = append(d, p.Done)
		}
		return d
	}())
	require.True(t, assessment[len(assessment)-1].Finished)

	require.Equal(t, schema, targetSchema(t, dst), "indexes and foreign keys are built again after the rows")

	checks, err := store.Verify(ctx, src, dst)
	require.NoError(t, err)
	for _, c := range checks {
		require.True(t, c.Match(), "%s: %+v", c.Table, c)
	}
	require.True(t, slices.ContainsFunc(checks, func(c store.TableCheck) bool { return c.Table == "river_job" }))

	// The same through the store API.
	srcID, err := src.InstallationID(ctx)
	require.NoError(t, err)
	require.Equal(t, srcID, report.InstallationID)
	// Read back through a new handle, as a server started on it would.
	reopened := storetest.MustOpenURL(t, dstURL)
	reopened.SetSecretBox(box)
	same := func(name string, read func(db *store.DB) (any, error)) {
		t.Helper()
		want, err := read(src)
		require.NoError(t, err, name)
		got, err := read(reopened)
		require.NoError(t, err, name)
		require.Equal(t, want, got, name)
	}
	dstID, err := reopened.InstallationID(ctx)
	require.NoError(t, err)
	require.Equal(t, srcID, dstID, "the installation ID (in every correlation ID) moves with the data")
	same("assessments", func(db *store.DB) (any, error) {
		a, _, err := db.FindAssessments(ctx, store.AssessmentFilter{Limit: 100})
		return a, err
	})
	same("assessments in scope", func(db *store.DB) (any, error) {
		a, _, err := db.FindAssessments(ctx, store.AssessmentFilter{Scope: "/subscriptions/S1/resourceGroups/rg", Limit: 100})
		return a, err
	})
	same("recommendations", func(db *store.DB) (any, error) {
		r, _, err := db.FindRecommendations(ctx, store.RecommendationFilter{})
		return r, err
	})
	same("assignments", func(db *store.DB) (any, error) {
		a, _, err := db.FindAssignments(ctx, store.AssignmentFilter{States: []steward.AssignmentState{steward.AssignmentActive}, Limit: 100})
		return a, err
	})
	same("tickets", func(db *store.DB) (any, error) {
		tk, _, err := db.FindTickets(ctx, store.TicketFilter{Limit: 100})
		return tk, err
	})
	same("integrations", func(db *store.DB) (any, error) { return db.FindIntegrations(ctx) })
	same("integration secrets", func(db *store.DB) (any, error) {
		ins, err := db.FindIntegrations(ctx)
		if err != nil {
			return nil, err
		}
		s, err := db.FindIntegrationSecrets(ctx, ins[0].ID)
		return s.Password.Reveal(), err
	})
	same("rules", func(db *store.DB) (any, error) { return db.FindRules(ctx) })
	same("sources", func(db *store.DB) (any, error) { return db.FindSources(ctx) })
	same("source secrets", func(db *store.DB) (any, error) {
		s, err := db.FindSource(ctx, "azure")
		if err != nil {
			return nil, err
		}
		sec, err := db.FindSourceSecrets(ctx, s.ID)
		return sec["client_secret"].Reveal(), err
	})
	same("audit", func(db *store.DB) (any, error) {
		a, _, err := db.FindAuditEvents(ctx, store.AuditFilter{Limit: 100})
		return a, err
	})
	same("tokens", func(db *store.DB) (any, error) { return db.FindTokens(ctx) })
	hash, session := sha256.Sum256([]byte("token-secret")), sha256.Sum256([]byte("session-secret")) // fillForCopy's
	same("token by hash", func(db *store.DB) (any, error) { return db.FindTokenByHash(ctx, hash[:]) })
	same("session", func(db *store.DB) (any, error) { return db.FindSessionByHash(ctx, session[:]) })
	same("sync state", func(db *store.DB) (any, error) {
		ins, err := db.FindIntegrations(ctx)
		if err != nil {
			return nil, err
		}
		return db.FindSyncState(ctx, ins[0].ID)
	})
	creds, err := reopened.FindIntegrationSecrets(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, "pw-prod", creds.Password.Reveal(), "sealed with the source's key, opened with the same key")

	// New rows continue after the copied IDs.
	as, _, err := dst.FindAssessments(ctx, store.AssessmentFilter{Limit: 100})
	require.NoError(t, err)
	a := storetest.Assignment(t, dst, as[len(as)-1].ID, "dave@example.com", time.Now().Add(time.Hour))
	require.Greater(t, a.ID, int64(6))

	// River on PostgreSQL reads the jobs: the running one is available,
	// the discarded one keeps its errors, the queue stays paused, and the
	// unique index still holds (bit(8) unique_states).
	dstClient, err := river.NewClient(dst.RiverDriver(), &river.Config{})
	require.NoError(t, err)
	jobs, err := dstClient.JobList(ctx, river.NewJobListParams().First(100))
	require.NoError(t, err)
	require.Len(t, jobs.Jobs, 5)
	byN := map[int]*rivertype.JobRow{}
	for _, j := range jobs.Jobs {
		var args copyTestArgs
		require.NoError(t, json.Unmarshal(j.EncodedArgs, &args))
		require.Equal(t, "é\u2028<&>", args.Note)
		byN[args.N] = j
	}
	require.Equal(t, rivertype.JobStateAvailable, byN[1].State)
	require.Equal(t, []string{"gone-client", "gone-client-2"}, byN[1].AttemptedBy)
	require.Equal(t, time.Date(2026, 1, 4, 5, 6, 7, 890e6, time.UTC), byN[1].AttemptedAt.UTC())
	require.NotNil(t, byN[3].AttemptedBy)
	require.Empty(t, byN[3].AttemptedBy)
	require.Nil(t, byN[0].AttemptedBy)
	require.Equal(t, rivertype.JobStateDiscarded, byN[2].State)
	require.Len(t, byN[2].Errors, 2)
	require.Equal(t, "again", byN[2].Errors[1].Error)
	require.Equal(t, []string{"copy", "tag-0"}, byN[0].Tags)
	require.Empty(t, byN[4].Tags)
	require.Equal(t, time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), byN[4].ScheduledAt.UTC())
	var meta map[string]any
	require.NoError(t, json.Unmarshal(byN[0].Metadata, &meta))
	require.Equal(t, 1.5, meta["m"])
	require.Equal(t, "v", meta["k"])
	require.Equal(t, 4, byN[3].Priority)
	q, err := dstClient.QueueGet(ctx, "itsm")
	require.NoError(t, err)
	require.NotNil(t, q.PausedAt)
	require.NoError(t, dst.WithTx(ctx, func(tx *store.Tx) error {
		res, err := dstClient.InsertTx(ctx, tx.SQL(), copyTestArgs{N: 0, Note: "é\u2028<&>"}, &river.InsertOpts{Queue: "itsm",
			UniqueOpts: river.UniqueOpts{ByArgs: true}})
		require.NoError(t, err)
		require.True(t, res.UniqueSkippedAsDuplicate, "the copied job still holds its unique key")
		res, err = dstClient.InsertTx(ctx, tx.SQL(), copyTestArgs{N: 99}, nil)
		require.NoError(t, err)
		require.Greater(t, res.Job.ID, jobs.Jobs[len(jobs.Jobs)-1].ID, "job IDs continue after the copied ones")
		return nil
	}))

	// A second copy into the now non-empty target is refused, naming what
	// it holds.
	_, err = store.Copy(ctx, src, dst, store.CopyOptions{})
	storetest.RequireCode(t, err, steward.CodeConflict)
	require.ErrorContains(t, err, "already holds data: ")
	require.ErrorContains(t, err, "assessment (31 rows)")

	// A changed row in the target fails the verification and is named.
	_, err = dst.Writer().ExecContext(ctx, `UPDATE assessment SET status_reason = 'tampered' WHERE id = $1`, as[3].ID)
	require.NoError(t, err)
	checks, err = store.Verify(ctx, src, dst)
	require.NoError(t, err)
	for _, c := range checks {
		switch c.Table {
		case "assessment":
			require.False(t, c.Match())
			require.NotEqual(t, c.SourceSum, c.TargetSum)
			require.Contains(t, c.Difference, fmt.Sprintf("row (id=%d), column status_reason", as[3].ID))
		case "assignment", "assignment_event", "audit_event", "river_job":
			// rows were added on the target since the copy
		default:
			require.True(t, c.Match(), "%s: %+v", c.Table, c)
		}
	}
}

// TestCopyRefusals: the target must be PostgreSQL and the source SQLite.
func TestCopyRefusals(t *testing.T) {
	t.Parallel()
	a, b := storetest.MustOpenBackend(t, storetest.SQLite), storetest.MustOpenBackend(t, storetest.SQLite)
	_, err := store.Copy(t.Context(), a, b, store.CopyOptions{})
	storetest.RequireCode(t, err, steward.CodeInvalid)
	require.ErrorContains(t, err, "the target must be a PostgreSQL database")
}

// TestSQLiteSchemaVersion reads the schema version without creating or
// migrating anything.
func TestSQLiteSchemaVersion(t *testing.T) {
	t.Parallel()
	missing := t.TempDir() + "/none.db"
	_, err := store.SQLiteSchemaVersion(t.Context(), missing)
	storetest.RequireCode(t, err, steward.CodeNotFound)
	require.NoFileExists(t, missing)

	db := storetest.MustOpenBackend(t, storetest.SQLite)
	v, err := store.SQLiteSchemaVersion(t.Context(), db.Path())
	require.NoError(t, err)
	sv, err := db.Versions(t.Context())
	require.NoError(t, err)
	require.Equal(t, sv.Latest(), v)
	require.GreaterOrEqual(t, v, 13)
}

// targetSchema lists the indexes and constraints of a PostgreSQL database.
func targetSchema(t *testing.T, db *store.DB) []string {
	t.Helper()
	rows, err := db.Writer().QueryContext(t.Context(), `SELECT indexname || ': ' || indexdef FROM pg_indexes WHERE schemaname = current_schema()
		UNION ALL SELECT conrelid::regclass::text || '.' || conname || ': ' || pg_get_constraintdef(oid) FROM pg_constraint
		WHERE connamespace = current_schema()::regnamespace ORDER BY 1`)
	require.NoError(t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		out = append(out, s)
	}
	require.NoError(t, rows.Err())
	require.Greater(t, len(out), 50)
	return out
}

// TestCopyFailureEmptiesTheTarget: a copy that fails part-way (here a
// source value that does not convert, in the last table) leaves the target
// as it was: empty, with every index and foreign key; the copy then
// succeeds once the source is fixed.
func TestCopyFailureEmptiesTheTarget(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	src := storetest.MustOpenBackend(t, storetest.SQLite)
	fillForCopy(t, src)
	_, err := src.Writer().ExecContext(ctx, `UPDATE ticket_group SET created_at = 'yesterday' WHERE id = 1`)
	require.NoError(t, err)
	dst := storetest.MustOpenURL(t, pgtest.URL(t))
	schema := targetSchema(t, dst)

	_, err = store.Copy(ctx, src, dst, store.CopyOptions{BatchRows: 3})
	require.ErrorContains(t, err, "copy ticket_group: row 1, column created_at: cannot convert string yesterday")
	require.ErrorContains(t, err, "(the target was emptied again)")
	require.Equal(t, schema, targetSchema(t, dst))
	require.NoError(t, store.CheckCopyable(ctx, src, dst))

	_, err = src.Writer().ExecContext(ctx, `UPDATE ticket_group SET created_at = '1767225600000000' WHERE id = 1`)
	require.NoError(t, err)
	_, err = store.Copy(ctx, src, dst, store.CopyOptions{})
	require.NoError(t, err)
	checks, err := store.Verify(ctx, src, dst)
	require.NoError(t, err)
	for _, c := range checks {
		require.True(t, c.Match(), "%s: %+v", c.Table, c)
	}
}

// TestCopyCanceled: a copy stopped part-way (Ctrl-C) also leaves the
// target as it was.
func TestCopyCanceled(t *testing.T) {
	t.Parallel()
	src := storetest.MustOpenBackend(t, storetest.SQLite)
	fillForCopy(t, src)
	dst := storetest.MustOpenURL(t, pgtest.URL(t))
	schema := targetSchema(t, dst)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	_, err := store.Copy(ctx, src, dst, store.CopyOptions{BatchRows: 2, Progress: func(p store.CopyProgress) {
		if p.Table == "assessment" && p.Done >= 4 {
			cancel()
		}
	}})
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorContains(t, err, "(the target was emptied again)")
	require.Equal(t, schema, targetSchema(t, dst))
	require.NoError(t, store.CheckCopyable(t.Context(), src, dst))
}

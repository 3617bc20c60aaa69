package ingest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/ingest"
	"github.com/stewardhq/steward/internal/jobs"
	"github.com/stewardhq/steward/internal/source"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// setupOn is setup on a given store.
func setupOn(t *testing.T, db *store.DB) *testBundle {
	t.Helper()
	client, err := river.NewClient(db.RiverDriver(), &river.Config{Logger: storetest.Logger(t)})
	require.NoError(t, err)
	q := jobs.NewQueue()
	q.Bind(client)
	reg := prometheus.NewRegistry()
	return &testBundle{db: db, in: ingest.New(db, q, storetest.Logger(t), reg), reg: reg, dir: t.TempDir()}
}

// countedTables are what an import writes, directly or through rules and
// the job queue.
var countedTables = []string{"assessment", "assessment_status_change", "resource", "recommendation",
	"assignment", "assignment_event", "audit_event", "river_job"}

// counts returns the row count of every counted table.
func counts(t *testing.T, db *store.DB) map[string]int {
	t.Helper()
	out := make(map[string]int, len(countedTables))
	for _, table := range countedTables {
		var n int
		require.NoError(t, db.Writer().QueryRowContext(t.Context(), "SELECT COUNT(*) FROM "+table).Scan(&n), table)
		out[table] = n
	}
	return out
}

// importFixture is a store with history and a governance rule, and a
// 12-record file (chunks of 5) that changes it in every way an import
// can: three stored Healthy assessments turn Unhealthy (status changes),
// nine are created, and the rule assigns all twelve.
type importFixture struct {
	*testBundle
	records []steward.Observation
}

func newImportFixture(t *testing.T, db *store.DB) *importFixture {
	t.Helper()
	b := setupOn(t, db)
	ingest.SetChunkSize(b.in, 5)
	records := obs(12)
	for _, o := range records[:3] {
		o.Status = steward.StatusHealthy
		storetest.Apply(t, db, time.Time{}, o)
	}
	r := &steward.Rule{Name: "highs", Scope: "/subscriptions/s1", Priority: 10, Enabled: true,
		When:  []steward.ConditionSet{{Severity: []steward.Severity{steward.SeverityHigh}}},
		Owner: steward.OwnerSource{Email: "owner@example.com"}, DueInDays: 14}
	require.NoError(t, db.WithTx(t.Context(), func(tx *store.Tx) error { return tx.CreateRule(t.Context(), r, "test") }))
	return &importFixture{testBundle: b, records: records}
}

// TestImportAllOrNothing: a file whose last record is bad leaves the store
// exactly as it was, although every chunk before it was applied, with its
// rule assignments and jobs, in the import's transaction; the import fails
// naming the record.
func TestImportAllOrNothing(t *testing.T) {
	t.Parallel()
	storetest.ForEachBackend(t, func(t *testing.T, db *store.DB) {
		f := newImportFixture(t, db)
		before := counts(t, db)
		data := append(jsonl(t, f.records),
			`{"resource":{"id":"r","cloud":"aws"},"recommendation":{"key":"k","severity":"Severe"},"status":"Healthy"}`+"\n"...)
		imp := f.createImport(t, source.FormatSteward, f.file(t, "bad-last.jsonl", data))
		applied := 0
		ingest.SetAfterChunk(f.in, func(_ context.Context, records int) error { applied = records; return nil })

		err := ingest.NewImportWorker(f.in).Work(t.Context(), importJob(imp.ID, 1))
		var cancel *river.JobCancelError
		require.ErrorAs(t, err, &cancel, "bad input is not retried")
		// The applier always applies the first chunk; it stops as soon as
		// it sees the parse has failed, so it may not reach the second.
		require.GreaterOrEqual(t, applied, 5, "chunks before the bad record were applied (and rolled back)")
		got, err := db.FindImportByID(t.Context(), imp.ID)
		require.NoError(t, err)
		require.Equal(t, store.ImportFailed, got.State)
		require.Equal(t, `record 13 (line 13): recommendation.severity: unknown severity "Severe" (want Low, Medium, High or Critical)`, got.Error)
		require.Equal(t, before, counts(t, db), "the store is exactly as before")
		require.Equal(t, 1.0, metric(t, f.testBundle, "steward_ingest_batches_total", "import", "invalid"))
	})
}

// TestImportCrashRetried: an import that dies mid-apply (a failed chunk,
// or its context cancelled by a shutdown) leaves nothing; the retried job
// starts over and applies the file exactly once.
func TestImportCrashRetried(t *testing.T) {
	t.Parallel()
	storetest.ForEachBackend(t, func(t *testing.T, db *store.DB) {
		f := newImportFixture(t, db)
		before := counts(t, db)
		spool := f.file(t, "ok.jsonl", jsonl(t, f.records))
		imp := f.createImport(t, source.FormatSteward, spool)
		w := ingest.NewImportWorker(f.in)

		// Attempt 1 fails after its second chunk.
		crash := errors.New("disk on fire")
		ingest.SetAfterChunk(f.in, func(_ context.Context, records int) error {
			if records == 10 {
				return crash
			}
			return nil
		})
		require.ErrorIs(t, w.Work(t.Context(), importJob(imp.ID, 1)), crash)
		require.Equal(t, before, counts(t, db), "a failed attempt leaves nothing")
		got, err := db.FindImportByID(t.Context(), imp.ID)
		require.NoError(t, err)
		require.Equal(t, store.ImportQueued, got.State, "retried")

		// Attempt 2 is stopped (shutdown) after its first chunk.
		ctx, stop := context.WithCancel(t.Context())
		defer stop()
		ingest.SetAfterChunk(f.in, func(_ context.Context, records int) error {
			if records == 5 {
				stop()
			}
			return nil
		})
		require.ErrorIs(t, w.Work(ctx, importJob(imp.ID, 2)), context.Canceled)
		require.Equal(t, before, counts(t, db), "a cancelled attempt leaves nothing")

		// Attempt 3 applies the whole file, once.
		ingest.SetAfterChunk(f.in, nil)
		require.NoError(t, w.Work(t.Context(), importJob(imp.ID, 3)))
		got, err = db.FindImportByID(t.Context(), imp.ID)
		require.NoError(t, err)
		require.Equal(t, store.ImportSucceeded, got.State)
		require.Equal(t, 9, got.Result.AssessmentsCreated)
		require.Equal(t, 3, got.Result.StatusChanged)
		require.Equal(t, 12, got.Result.RuleAssignments)
		after := counts(t, db)
		assert.Equal(t, before["assessment"]+9, after["assessment"])
		assert.Equal(t, before["assessment_status_change"]+3, after["assessment_status_change"])
		assert.Equal(t, before["assignment"]+12, after["assignment"])
		assert.Equal(t, before["river_job"]+1, after["river_job"], "one summaries recompute")
		require.Equal(t, [][]string{{"rec-0", "rec-1", "rec-2"}}, sortedKeys(f.recomputeJobs(t)))
	})
}

// TestImportProgress: while an import is applying (held after its first
// chunk by a test hook), its progress is visible — on PostgreSQL to
// another process's Ingester, through the database, although the chunk is
// not committed — and readers see the store as it was; when it ends,
// there is no progress.
func TestImportProgress(t *testing.T) {
	t.Parallel()
	storetest.ForEachBackendPair(t, func(t *testing.T, dbA, dbB *store.DB) {
		f := newImportFixture(t, dbA)
		ingest.SetProgressEvery(f.in, 0)
		// On SQLite one process owns the database and keeps progress in
		// memory; on PostgreSQL another process reads it.
		reader := f.in
		if dbA.Postgres() {
			reader = ingest.New(dbB, nil, storetest.Logger(t), nil)
		}
		before, _, err := dbB.FindAssessments(t.Context(), store.AssessmentFilter{Limit: 100})
		require.NoError(t, err)

		imp := f.createImport(t, source.FormatSteward, f.file(t, "held.jsonl", jsonl(t, f.records)))
		held, release := make(chan struct{}), make(chan struct{})
		ingest.SetAfterChunk(f.in, func(_ context.Context, records int) error {
			if records == 5 {
				close(held)
				<-release
			}
			return nil
		})
		done := make(chan error, 1)
		go func() { done <- ingest.NewImportWorker(f.in).Work(t.Context(), importJob(imp.ID, 1)) }()
		<-held

		p, ok := reader.Progress(t.Context(), imp.ID)
		require.True(t, ok)
		assert.Equal(t, ingest.PhaseApplying, p.Phase)
		assert.Equal(t, 5, p.Records, "the first chunk is applied")
		assert.Zero(t, p.RecordsTotal, "unknown until the end")
		assert.Equal(t, imp.Size, p.BytesTotal)
		assert.Positive(t, p.BytesRead)
		during, _, err := dbB.FindAssessments(t.Context(), store.AssessmentFilter{Limit: 100})
		require.NoError(t, err)
		assert.Len(t, during, len(before), "nothing is visible before the import commits")

		close(release)
		require.NoError(t, <-done)
		got, err := dbB.FindImportByID(t.Context(), imp.ID)
		require.NoError(t, err)
		require.Equal(t, store.ImportSucceeded, got.State)
		_, ok = reader.Progress(t.Context(), imp.ID)
		require.False(t, ok, "no progress once the import ended")
	})
}

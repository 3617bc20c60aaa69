package ingest_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/ingest"
	"github.com/stewardhq/steward/internal/source"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/pgtest"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// TestImportProgressAcrossProcesses (PostgreSQL): while one process
// imports a file, another process's Ingester (its own *store.DB handle on
// the database) shows the import's progress as of the last committed
// chunk; when the import ends, none.
//
// The import is held after its first chunk: the test locks the assessment
// the second chunk changes, in a transaction of its own.
func TestImportProgressAcrossProcesses(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	dbA, dbB := storetest.MustOpenURL(t, url), storetest.MustOpenURL(t, url)
	inA := ingest.New(dbA, nil, storetest.Logger(t), nil)
	inB := ingest.New(dbB, nil, storetest.Logger(t), nil)
	ingest.SetChunkSize(inA, 5)
	b := &testBundle{db: dbA, in: inA, dir: t.TempDir()}

	records := obs(12)
	// Record 7 (in the second chunk) exists Healthy; the file turns it
	// Unhealthy, so the second chunk must write its row.
	held := records[6]
	healthy := held
	healthy.Status = steward.StatusHealthy
	storetest.Apply(t, dbA, time.Time{}, healthy)
	found, _, err := dbA.FindAssessments(t.Context(), store.AssessmentFilter{RecommendationKey: held.Recommendation.Key, ResourceID: held.Resource.ID})
	require.NoError(t, err)
	require.Len(t, found, 1)

	spool := b.file(t, "held.jsonl", jsonl(t, records))
	imp := b.createImport(t, source.FormatSteward, spool)

	lock, err := dbB.Writer().BeginTx(t.Context(), nil)
	require.NoError(t, err)
	defer func() { _ = lock.Rollback() }()
	_, err = lock.ExecContext(t.Context(), `SELECT id FROM assessment WHERE id = $1 FOR UPDATE`, found[0].ID)
	require.NoError(t, err)

	done := make(chan error, 1)
	go func() { done <- ingest.NewImportWorker(inA).Work(t.Context(), importJob(imp.ID, 1)) }()

	require.Eventually(t, func() bool {
		p, ok := inB.Progress(t.Context(), imp.ID)
		return ok && p.Phase == ingest.PhaseApplying
	}, 10*time.Second, 10*time.Millisecond, "the other process sees the import applying")
	p, _ := inB.Progress(t.Context(), imp.ID)
	assert.Equal(t, 5, p.Records, "the first chunk committed; the second waits")
	assert.Equal(t, 12, p.RecordsTotal)
	assert.Equal(t, imp.Size, p.BytesTotal)
	assert.Positive(t, p.BytesRead)

	require.NoError(t, lock.Rollback())
	require.NoError(t, <-done)
	got, err := dbB.FindImportByID(t.Context(), imp.ID)
	require.NoError(t, err)
	require.Equal(t, store.ImportSucceeded, got.State)
	_, ok := inB.Progress(t.Context(), imp.ID)
	require.False(t, ok, "no progress once the import ended")
}

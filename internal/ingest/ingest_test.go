package ingest_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/ingest"
	"github.com/stewardhq/steward/internal/jobs"
	"github.com/stewardhq/steward/internal/source"
	"github.com/stewardhq/steward/internal/source/stewardjson"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

type testBundle struct {
	db  *store.DB
	in  *ingest.Ingester
	reg *prometheus.Registry
	dir string
}

// setup opens a fresh store and an Ingester whose queue is bound to an
// insert-only River client on the store's writer, so queued jobs are rows
// in river_job that tests can read.
func setup(t *testing.T) *testBundle {
	t.Helper()
	db := storetest.MustOpen(t)
	client, err := river.NewClient(db.RiverDriver(), &river.Config{Logger: storetest.Logger(t)})
	require.NoError(t, err)
	q := jobs.NewQueue()
	q.Bind(client)
	reg := prometheus.NewRegistry()
	in := ingest.New(db, q, storetest.Logger(t), reg)
	return &testBundle{db: db, in: in, reg: reg, dir: t.TempDir()}
}

func obs(n int) []steward.Observation {
	out := make([]steward.Observation, n)
	for i := range out {
		out[i] = storetest.Observation(fmt.Sprintf("rec-%d", i%3), fmt.Sprintf("/subscriptions/s1/resourceGroups/rg/providers/m.c/vm/vm%d", i), steward.StatusUnhealthy)
	}
	return out
}

// jsonl renders observations as Steward JSON Lines.
func jsonl(t *testing.T, obs []steward.Observation) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for _, o := range obs {
		require.NoError(t, enc.Encode(stewardjson.FromObservation(o)))
	}
	return b.Bytes()
}

func (b *testBundle) file(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(b.dir, name)
	require.NoError(t, os.WriteFile(path, data, 0o600))
	return path
}

func (b *testBundle) assessments(t *testing.T) []*steward.Assessment {
	t.Helper()
	got, _, err := b.db.FindAssessments(t.Context(), store.AssessmentFilter{Limit: 500})
	require.NoError(t, err)
	return got
}

// recomputeJobs returns the keys of every queued summaries job.
func (b *testBundle) recomputeJobs(t *testing.T) [][]string {
	t.Helper()
	rows, err := b.db.Writer().QueryContext(t.Context(), storetest.JobArgsQuery(b.db), jobs.RecomputeSummariesArgs{}.Kind())
	require.NoError(t, err)
	defer rows.Close()
	var out [][]string
	for rows.Next() {
		var raw string
		require.NoError(t, rows.Scan(&raw))
		var args jobs.RecomputeSummariesArgs
		require.NoError(t, json.Unmarshal([]byte(raw), &args))
		out = append(out, args.Keys)
	}
	require.NoError(t, rows.Err())
	return out
}

func TestApplyBatch(t *testing.T) {
	t.Parallel()

	t.Run("AllOrNothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		batch := obs(5)
		batch[3].Recommendation.Severity = "Severe"
		_, err := b.in.ApplyBatch(t.Context(), batch)
		storetest.RequireCode(t, err, steward.CodeInvalid)
		require.Equal(t, `record 4: recommendation.severity "Severe" is not one of Low, Medium, High, Critical`, steward.ErrorMessage(err))
		require.Empty(t, b.assessments(t))
		require.Empty(t, b.recomputeJobs(t))
		require.Equal(t, 1.0, metric(t, b, "steward_ingest_batches_total", "api", "invalid"))
	})

	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		res, err := b.in.ApplyBatch(t.Context(), obs(5))
		require.NoError(t, err)
		require.Equal(t, 5, res.Observations)
		require.Equal(t, 5, res.AssessmentsCreated)
		require.Len(t, b.assessments(t), 5)
		require.Equal(t, [][]string{{"rec-0", "rec-1", "rec-2"}}, b.recomputeJobs(t))

		// Same again: nothing changes, nothing to recompute.
		res, err = b.in.ApplyBatch(t.Context(), obs(5))
		require.NoError(t, err)
		require.Equal(t, 0, res.AssessmentsCreated)
		require.Equal(t, 0, res.StatusChanged)
		require.Equal(t, 5, res.Unchanged)
		require.Len(t, b.recomputeJobs(t), 1)
		require.Equal(t, 2.0, metric(t, b, "steward_ingest_batches_total", "api", "ok"))
		require.Equal(t, 5.0, metric(t, b, "steward_ingest_observations_total", "created"))
		require.Equal(t, 5.0, metric(t, b, "steward_ingest_observations_total", "unchanged"))
	})
}

// metric returns the value of one counter series registered by the
// Ingester, identified by its label values in any order.
func metric(t *testing.T, b *testBundle, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := b.reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var vals []string
			for _, lp := range m.GetLabel() {
				vals = append(vals, lp.GetValue())
			}
			slices.Sort(vals)
			if slices.Equal(vals, slices.Sorted(slices.Values(labels))) {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no metric %s{%s}", name, strings.Join(labels, ","))
	return 0
}

func TestApplyFile(t *testing.T) {
	t.Parallel()

	t.Run("BadRecordAtEndLeavesStoreUnchanged", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ingest.SetChunkSize(b.in, 5)
		data := jsonl(t, obs(20))
		data = append(data, `{"resource":{"id":"r","cloud":"aws"},"recommendation":{"key":"k","severity":"Severe"},"status":"Healthy"}`+"\n"...)
		_, err := b.in.ApplyFile(t.Context(), b.file(t, "bad.jsonl", data), source.FormatSteward, nil)
		storetest.RequireCode(t, err, steward.CodeInvalid)
		require.Equal(t, `record 21 (line 21): recommendation.severity: unknown severity "Severe" (want Low, Medium, High or Critical)`, steward.ErrorMessage(err))
		require.Empty(t, b.assessments(t))
		require.Empty(t, b.recomputeJobs(t))
		require.Equal(t, 1.0, metric(t, b, "steward_ingest_batches_total", "import", "invalid"))
	})

	t.Run("TruncatedRejected", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ingest.SetChunkSize(b.in, 5)
		var doc bytes.Buffer
		doc.WriteString(`{"version": 1, "assessments": [`)
		for i, a := range bytes.Split(bytes.TrimSpace(jsonl(t, obs(12))), []byte("\n")) {
			if i > 0 {
				doc.WriteString(",\n")
			}
			doc.Write(a)
		}
		doc.WriteString("]}\n")
		full := doc.Bytes()
		_, err := b.in.ApplyFile(t.Context(), b.file(t, "cut.json", full[:len(full)-30]), "", nil)
		storetest.RequireCode(t, err, steward.CodeInvalid)
		require.Equal(t, "record 12 (line 12): unexpected end of input after record 11", steward.ErrorMessage(err))
		require.Empty(t, b.assessments(t))

		// The whole document imports, detected as Steward JSON.
		res, err := b.in.ApplyFile(t.Context(), b.file(t, "full.json", full), "", nil)
		require.NoError(t, err)
		require.Equal(t, 12, res.AssessmentsCreated)
	})

	t.Run("ReimportIdempotent", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ingest.SetChunkSize(b.in, 7)
		path := b.file(t, "a.jsonl", jsonl(t, obs(30)))
		var progress []ingest.Progress
		res, err := b.in.ApplyFile(t.Context(), path, source.FormatSteward, func(p ingest.Progress) { progress = append(progress, p) })
		require.NoError(t, err)
		require.Equal(t, store.ApplyResult{Observations: 30, AssessmentsCreated: 30, ResourcesCreated: 30, RecommendationsCreated: 3,
			ChangedRecommendations: []string{"rec-0", "rec-1", "rec-2"}}, res)
		require.Len(t, b.assessments(t), 30)
		size := int64(len(jsonl(t, obs(30))))
		require.Equal(t, ingest.Progress{Phase: ingest.PhaseApplying, Records: 7, BytesRead: size, BytesTotal: size}, progress[0],
			"the first chunk applied; the parser has read the small file to its end")
		require.Equal(t, ingest.Progress{Phase: ingest.PhaseApplying, Records: 30, RecordsTotal: 30, BytesRead: size, BytesTotal: size}, progress[len(progress)-1])

		res, err = b.in.ApplyFile(t.Context(), path, source.FormatSteward, nil)
		require.NoError(t, err)
		require.Equal(t, 0, res.AssessmentsCreated)
		require.Equal(t, 0, res.StatusChanged)
		require.Equal(t, 30, res.Unchanged)
		require.Equal(t, 0, res.ResourcesCreated)
		// An import is all or nothing, so it recomputes what it changed:
		// nothing the second time.
		require.Equal(t, [][]string{{"rec-0", "rec-1", "rec-2"}}, sortedKeys(b.recomputeJobs(t)))
	})

	t.Run("OCSFSamples", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		var total store.ApplyResult
		for _, cloud := range []string{"aws", "azure", "gcp"} {
			res, err := b.in.ApplyFile(t.Context(), "../../testdata/findings/prowler_example_output_"+cloud+".ocsf.json", "", nil)
			require.NoError(t, err, cloud)
			require.Equal(t, 5, res.Observations, cloud)
			total.Add(res)
		}
		// The GCP sample names one placeholder firewall rule in three
		// findings of the same check: one assessment, the last one wins.
		require.Equal(t, 13, total.AssessmentsCreated)
		require.Len(t, b.assessments(t), 13)
		got, _, err := b.db.FindAssessments(t.Context(), store.AssessmentFilter{Scope: "/gcp/projects/<project_id>", Limit: 100})
		require.NoError(t, err)
		require.Len(t, got, 3)
		fw, _, err := b.db.FindAssessments(t.Context(), store.AssessmentFilter{RecommendationKey: "prowler:gcp:compute_firewall_rdp_access_from_the_internet_allowed"})
		require.NoError(t, err)
		require.Len(t, fw, 1)
		require.Equal(t, steward.StatusUnhealthy, fw[0].Status)
	})
}

func sortedKeys(in [][]string) [][]string {
	for _, k := range in {
		slices.Sort(k)
	}
	return in
}

func importJob(id int64, attempt int) *river.Job[jobs.ImportArgs] {
	return &river.Job[jobs.ImportArgs]{JobRow: &rivertype.JobRow{Attempt: attempt, MaxAttempts: 5}, Args: jobs.ImportArgs{ImportID: id}}
}

func (b *testBundle) createImport(t *testing.T, format source.Format, spool string) *store.Import {
	t.Helper()
	st, err := os.Stat(spool)
	require.NoError(t, err)
	imp := &store.Import{Format: string(format), Filename: filepath.Base(spool), SpoolPath: spool, Size: st.Size(), CreatedBy: "tester@example.com"}
	require.NoError(t, b.db.WithTx(t.Context(), func(tx *store.Tx) error { return tx.CreateImport(t.Context(), imp) }))
	return imp
}

func TestImportWorker(t *testing.T) {
	t.Parallel()

	t.Run("Succeeds", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		spool := b.file(t, "ok.spool", jsonl(t, obs(10)))
		imp := b.createImport(t, source.FormatSteward, spool)
		w := ingest.NewImportWorker(b.in)
		require.NoError(t, w.Work(t.Context(), importJob(imp.ID, 1)))
		got, err := b.db.FindImportByID(t.Context(), imp.ID)
		require.NoError(t, err)
		require.Equal(t, store.ImportSucceeded, got.State)
		require.Equal(t, 10, got.Result.AssessmentsCreated)
		require.NoFileExists(t, spool)
		_, ok := b.in.Progress(t.Context(), imp.ID)
		require.False(t, ok, "progress is cleared when the import ends")

		// A duplicate job does nothing.
		require.NoError(t, w.Work(t.Context(), importJob(imp.ID, 1)))
	})

	t.Run("InvalidIsPermanent", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		spool := b.file(t, "bad.spool", []byte(`[{"class_uid": 2004`))
		imp := b.createImport(t, source.FormatOCSF, spool)
		err := ingest.NewImportWorker(b.in).Work(t.Context(), importJob(imp.ID, 1))
		var cancel *river.JobCancelError
		require.ErrorAs(t, err, &cancel)
		got, err := b.db.FindImportByID(t.Context(), imp.ID)
		require.NoError(t, err)
		require.Equal(t, store.ImportFailed, got.State)
		require.Equal(t, "record 1 (line 1): unexpected end of input after record 0", got.Error)
		require.NoFileExists(t, spool)
		require.Empty(t, b.assessments(t))
	})

	t.Run("MissingSpoolIsPermanent", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		spool := b.file(t, "gone.spool", jsonl(t, obs(1)))
		imp := b.createImport(t, source.FormatSteward, spool)
		require.NoError(t, os.Remove(spool))
		err := ingest.NewImportWorker(b.in).Work(t.Context(), importJob(imp.ID, 1))
		var cancel *river.JobCancelError
		require.ErrorAs(t, err, &cancel)
		got, err := b.db.FindImportByID(t.Context(), imp.ID)
		require.NoError(t, err)
		require.Equal(t, store.ImportFailed, got.State)
		require.Contains(t, got.Error, "no longer on the server")
	})
}

func TestRecomputeWorker(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, err := b.in.ApplyBatch(t.Context(), obs(6))
	require.NoError(t, err)
	w := ingest.NewRecomputeWorker(b.db)
	require.NoError(t, w.Work(t.Context(), &river.Job[jobs.RecomputeSummariesArgs]{JobRow: &rivertype.JobRow{}, Args: jobs.RecomputeSummariesArgs{Keys: []string{"rec-0"}}}))
	sum, err := b.db.FindRecommendationByKey(t.Context(), "rec-0")
	require.NoError(t, err)
	require.NotNil(t, sum)
}

// BenchmarkApplyFile imports a 20,000-record JSON Lines file into a fresh
// store per iteration: both passes, 5,000-record chunks.
func BenchmarkApplyFile(b *testing.B) {
	data := func() []byte {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		for i := range 20_000 {
			o := storetest.Observation(fmt.Sprintf("rec-%d", i%200), fmt.Sprintf("/subscriptions/s1/resourceGroups/rg/providers/m.c/vm/vm%d", i), steward.StatusUnhealthy)
			if err := enc.Encode(stewardjson.FromObservation(o)); err != nil {
				b.Fatal(err)
			}
		}
		return buf.Bytes()
	}()
	path := filepath.Join(b.TempDir(), "bench.jsonl")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		b.Fatal(err)
	}
	n := 0
	for b.Loop() {
		b.StopTimer()
		db, err := store.Open(b.Context(), filepath.Join(b.TempDir(), "s.db"), storetest.Logger(b))
		if err != nil {
			b.Fatal(err)
		}
		in := ingest.New(db, nil, storetest.Logger(b), nil)
		b.StartTimer()
		res, err := in.ApplyFile(b.Context(), path, source.FormatSteward, nil)
		if err != nil {
			b.Fatal(err)
		}
		n += res.Observations
		b.StopTimer()
		db.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "rec/s")
}

package collector_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/collector"
	"github.com/stewardhq/steward/internal/collector/collectortest"
	"github.com/stewardhq/steward/internal/ingest"
	"github.com/stewardhq/steward/internal/jobs"
	"github.com/stewardhq/steward/internal/secret"
	"github.com/stewardhq/steward/internal/source/pull"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
	"github.com/stewardhq/steward/internal/testlog"
)

type bundle struct {
	db  *store.DB
	in  *ingest.Ingester
	svc *collector.Service
	w   *collector.PullWorker
	log *testlog.Buffer
}

func setup(t *testing.T, chunk int) *bundle {
	t.Helper()
	db := storetest.MustOpen(t)
	db.SetSecretBox(storetest.Box(t))
	client, err := river.NewClient(db.RiverDriver(), &river.Config{Logger: storetest.Logger(t)})
	require.NoError(t, err)
	q := jobs.NewQueue()
	q.Bind(client)
	logs := &testlog.Buffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	in := ingest.New(db, q, logger, nil)
	svc := collector.New(collector.Config{DB: db, Ingester: in, Queue: q, Logger: logger, ChunkSize: chunk,
		Kinds: collector.Registry{collectortest.KindName: collectortest.Kind()}})
	return &bundle{db: db, in: in, svc: svc, w: collector.NewPullWorker(svc), log: logs}
}

const sub = "/subscriptions/s1"

func res(name string) string {
	return sub + "/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/" + name
}

var unit1 = pull.Unit{ID: "s1", Scope: sub}

func (b *bundle) source(t *testing.T, name, script string) *store.SourceRecord {
	t.Helper()
	settings := json.RawMessage(`{"script":"` + script + `"}`)
	rec, err := b.svc.Create(t.Context(), steward.SourceInput{Name: &name, Kind: ptr(collectortest.KindName),
		Scope: ptr(steward.Scope(sub)), Settings: settings}, "admin")
	require.NoError(t, err)
	return rec
}

func ptr[T any](v T) *T { return &v }

// runOnce queues a run of src and works its job as attempt attempt.
func (b *bundle) work(t *testing.T, run *steward.SourceRun, attempt int) error {
	t.Helper()
	job := &river.Job[jobs.SourcePullArgs]{JobRow: &rivertype.JobRow{Attempt: attempt, MaxAttempts: 3},
		Args: jobs.SourcePullArgs{SourceID: run.SourceID, RunID: run.ID}}
	return b.w.Work(t.Context(), job)
}

func (b *bundle) run(t *testing.T, src *store.SourceRecord) *steward.SourceRun {
	t.Helper()
	run, created, err := b.svc.Run(t.Context(), src.Name, "admin")
	require.NoError(t, err)
	require.True(t, created)
	require.NoError(t, b.work(t, run, 1))
	got, err := b.db.FindSourceRun(t.Context(), src.ID, run.ID)
	require.NoError(t, err)
	return got
}

func (b *bundle) status(t *testing.T, rec, resource string) *steward.Assessment {
	t.Helper()
	got, _, err := b.db.FindAssessments(t.Context(), store.AssessmentFilter{RecommendationKey: rec, ResourceID: resource})
	require.NoError(t, err)
	require.Len(t, got, 1)
	return got[0]
}

func unhealthy(rec, resource string) steward.Observation {
	return storetest.Observation(rec, resource, steward.StatusUnhealthy)
}

// TestGoneRule: a finding present in run 1 and absent in run 2 becomes
// Healthy ("no longer reported by source ...") and its assignment
// completes; one still reported stays; a file-imported finding in the same
// scope is never touched.
func TestGoneRule(t *testing.T) {
	b := setup(t, 2)
	collectortest.SetScript(t.Name()+"1", collectortest.Serve(collectortest.Unit{Unit: unit1,
		Obs: []steward.Observation{unhealthy("rec-a", res("vm1")), unhealthy("rec-b", res("vm2")), unhealthy("rec-c", res("vm3"))}}))
	src := b.source(t, "defender-prod", t.Name()+"1")
	// A file import in the same scope.
	_, err := b.in.ApplyBatch(t.Context(), []steward.Observation{unhealthy("rec-file", res("vm1"))})
	require.NoError(t, err)

	run1 := b.run(t, src)
	require.Equal(t, steward.SourceRunDone, run1.State)
	require.Equal(t, 3, run1.Observed)
	require.Equal(t, 3, run1.New)
	require.Equal(t, []steward.SourceUnit{{ID: "s1", Scope: sub, Observed: 3, Done: true}}, run1.Units)

	a := b.status(t, "rec-a", res("vm1"))
	asg := storetest.Assignment(t, b.db, a.ID, "alice@example.com", time.Now().Add(72*time.Hour))

	// Run 2: rec-a is no longer reported.
	collectortest.SetScript(t.Name()+"1", collectortest.Serve(collectortest.Unit{Unit: unit1,
		Obs: []steward.Observation{unhealthy("rec-b", res("vm2")), unhealthy("rec-c", res("vm3"))}}))
	run2 := b.run(t, src)
	require.Equal(t, steward.SourceRunDone, run2.State)
	require.Equal(t, 1, run2.Gone)
	require.Equal(t, 2, run2.Unchanged)
	require.Equal(t, 1, run2.Units[0].Gone)

	got := b.status(t, "rec-a", res("vm1"))
	require.Equal(t, steward.StatusHealthy, got.Status)
	require.Equal(t, "no longer reported by source defender-prod", got.StatusReason)
	done, err := b.db.FindAssignmentByID(t.Context(), asg.ID)
	require.NoError(t, err)
	require.Equal(t, steward.AssignmentCompleted, done.State)
	require.Equal(t, steward.StatusUnhealthy, b.status(t, "rec-b", res("vm2")).Status)
	require.Equal(t, steward.StatusUnhealthy, b.status(t, "rec-file", res("vm1")).Status, "a file-imported finding is never made gone")

	// Run 3 reports nothing at all: everything of the source is gone, the
	// file's finding still is not.
	collectortest.SetScript(t.Name()+"1", collectortest.Serve(collectortest.Unit{Unit: unit1}))
	run3 := b.run(t, src)
	require.Equal(t, 2, run3.Gone)
	require.Equal(t, steward.StatusUnhealthy, b.status(t, "rec-file", res("vm1")).Status)
}

// TestFailedUnitChangesNothing: with the unit failed in run 2, what was not
// read stays Unhealthy and the run is partial with the unit's error.
func TestFailedUnitChangesNothing(t *testing.T) {
	b := setup(t, 100)
	name := t.Name()
	sub2 := pull.Unit{ID: "s2", Scope: "/subscriptions/s2"}
	collectortest.SetScript(name, collectortest.Serve(collectortest.Unit{Unit: unit1,
		Obs: []steward.Observation{unhealthy("rec-a", res("vm1")), unhealthy("rec-b", res("vm2"))}}))
	src, err := b.svc.Create(t.Context(), steward.SourceInput{Name: ptr("all"), Kind: ptr("test"), Scope: ptr(steward.Scope("/")),
		Settings: json.RawMessage(`{"script":"` + name + `"}`)}, "admin")
	require.NoError(t, err)
	b.run(t, src)

	collectortest.SetScript(name, collectortest.Serve(
		collectortest.Unit{Unit: unit1, Obs: []steward.Observation{unhealthy("rec-b", res("vm2"))},
			Fail: steward.Errorf(steward.CodeUnavailable, "subscription s1: page 2 of assessments: throttled past retries")},
		collectortest.Unit{Unit: sub2, Obs: []steward.Observation{unhealthy("rec-x", "/subscriptions/s2/vm9")}}))
	run := b.run(t, src)
	require.Equal(t, steward.SourceRunPartial, run.State)
	require.Equal(t, 1, run.Errors)
	require.Equal(t, 0, run.Gone)
	require.False(t, run.Units[0].Done)
	require.Contains(t, run.Units[0].Error, "page 2 of assessments")
	require.True(t, run.Units[1].Done)
	require.Equal(t, steward.StatusUnhealthy, b.status(t, "rec-a", res("vm1")).Status, "not read: not gone")

	// Every unit failing fails the run.
	collectortest.SetScript(name, collectortest.Serve(collectortest.Unit{Unit: unit1, Fail: errors.New("boom")}))
	require.Equal(t, steward.SourceRunFailed, b.run(t, src).State)
}

// TestScopeRefusal: an observation outside the source's scope is refused
// and counted as an error of its unit; the run is partial.
func TestScopeRefusal(t *testing.T) {
	b := setup(t, 100)
	collectortest.SetScript(t.Name(), collectortest.Serve(collectortest.Unit{Unit: unit1,
		Obs: []steward.Observation{unhealthy("rec-a", res("vm1")), unhealthy("rec-a", "/subscriptions/s10/vm1"),
			{Resource: steward.Resource{ID: res("vm3")}}}}))
	src := b.source(t, "scoped", t.Name())
	run := b.run(t, src)
	require.Equal(t, steward.SourceRunPartial, run.State)
	require.Equal(t, 2, run.Errors)
	require.Equal(t, 2, run.Units[0].Refused)
	require.Equal(t, 1, run.Observed)
	_, _, err := b.db.FindAssessments(t.Context(), store.AssessmentFilter{ResourceID: "/subscriptions/s10/vm1"})
	require.NoError(t, err)
	all, _, err := b.db.FindAssessments(t.Context(), store.AssessmentFilter{})
	require.NoError(t, err)
	require.Len(t, all, 1)
}

// TestCrashResume: the first attempt dies after applying part of the pull;
// River retries the job, the run pulls again from the start, and its counts
// are this attempt's: nothing counted twice, nothing applied twice.
func TestCrashResume(t *testing.T) {
	b := setup(t, 2)
	var obs []steward.Observation
	for i := range 6 {
		obs = append(obs, unhealthy("rec-a", res("vm"+string(rune('a'+i)))))
	}
	var attempt atomic.Int32
	collectortest.SetScript(t.Name(), func(ctx context.Context, sink pull.Sink, _ secret.String) error {
		first := attempt.Add(1) == 1
		for i, o := range obs {
			if first && i == 4 {
				return errors.New("connection reset by peer")
			}
			if err := sink.Observe(ctx, unit1, o); err != nil {
				return err
			}
		}
		return sink.Done(ctx, unit1)
	})
	src := b.source(t, "crashy", t.Name())
	run, _, err := b.svc.Run(t.Context(), src.Name, "admin")
	require.NoError(t, err)
	require.Error(t, b.work(t, run, 1))
	mid, err := b.db.FindSourceRun(t.Context(), src.ID, run.ID)
	require.NoError(t, err)
	require.Equal(t, steward.SourceRunRunning, mid.State)
	require.Equal(t, 4, mid.New, "two chunks applied before the crash")
	require.Contains(t, mid.Error, "will retry")

	require.NoError(t, b.work(t, run, 2))
	end, err := b.db.FindSourceRun(t.Context(), src.ID, run.ID)
	require.NoError(t, err)
	require.Equal(t, steward.SourceRunDone, end.State)
	require.Equal(t, 2, end.Attempt)
	require.Equal(t, 6, end.Observed)
	require.Equal(t, 2, end.New)
	require.Equal(t, 4, end.Unchanged)
	require.Equal(t, 0, end.Gone)
	require.Empty(t, end.Error)
	all, _, err := b.db.FindAssessments(t.Context(), store.AssessmentFilter{})
	require.NoError(t, err)
	require.Len(t, all, 6)
}

// TestRunIsOneAtATime: asking for a run while one is queued answers that
// one; the schedule queues due sources once.
func TestRunIsOneAtATime(t *testing.T) {
	b := setup(t, 100)
	collectortest.SetScript(t.Name(), collectortest.Serve(collectortest.Unit{Unit: unit1}))
	src := b.source(t, "once", t.Name())
	n, err := b.svc.Schedule(t.Context())
	require.NoError(t, err)
	require.Equal(t, 1, n, "a new enabled source is due at once")
	run, created, err := b.svc.Run(t.Context(), src.Name, "admin")
	require.NoError(t, err)
	require.False(t, created)
	again, created, err := b.svc.Run(t.Context(), src.Name, "admin")
	require.NoError(t, err)
	require.False(t, created)
	require.Equal(t, run.ID, again.ID)
	n, err = b.svc.Schedule(t.Context())
	require.NoError(t, err)
	require.Zero(t, n, "not due again for an hour")
	require.NoError(t, b.work(t, run, 1))
	_, created, err = b.svc.Run(t.Context(), src.Name, "admin")
	require.NoError(t, err)
	require.True(t, created, "the run ended: a new one is queued")
}

// TestSecretsSealed: a source's secret is sealed in the database, reaches
// the puller, is answered only as has_token, and never appears in logs.
func TestSecretsSealed(t *testing.T) {
	b := setup(t, 100)
	const token = "tok-9f8e7d6c5b4a-very-secret"
	var seen atomic.Value
	collectortest.SetScript(t.Name(), func(ctx context.Context, sink pull.Sink, tok secret.String) error {
		seen.Store(tok.Reveal())
		sink.Failed(ctx, unit1, steward.Errorf(steward.CodeUnavailable, "refused credential"))
		return nil
	})
	rec, err := b.svc.Create(t.Context(), steward.SourceInput{Name: ptr("sealed"), Kind: ptr("test"), Scope: ptr(steward.Scope(sub)),
		Settings: json.RawMessage(`{"script":"` + t.Name() + `"}`), Secrets: map[string]string{"token": token}}, "admin")
	require.NoError(t, err)
	view, err := b.svc.View(t.Context(), rec)
	require.NoError(t, err)
	require.Equal(t, map[string]bool{"has_token": true}, view.Secrets)
	body, err := json.Marshal(view)
	require.NoError(t, err)
	require.NotContains(t, string(body), token)
	b.run(t, rec)
	require.Equal(t, token, seen.Load())

	for _, p := range []string{b.db.Path(), b.db.Path() + "-wal"} {
		raw, err := os.ReadFile(p)
		if os.IsNotExist(err) {
			continue
		}
		require.NoError(t, err)
		require.False(t, bytes.Contains(raw, []byte(token)), "%s holds the secret in clear", p)
	}
	require.NotContains(t, b.log.String(), token)

	// Clearing it.
	rec, err = b.svc.Update(t.Context(), "sealed", steward.SourceInput{Secrets: map[string]string{"token": ""}}, "admin")
	require.NoError(t, err)
	view, err = b.svc.View(t.Context(), rec)
	require.NoError(t, err)
	require.Equal(t, map[string]bool{"has_token": false}, view.Secrets)
}

// TestValidation: bad input is refused naming the field.
func TestValidation(t *testing.T) {
	b := setup(t, 100)
	ok := json.RawMessage(`{"script":"x"}`)
	for _, tc := range []struct {
		in    steward.SourceInput
		field string
	}{
		{steward.SourceInput{Kind: ptr("test"), Scope: ptr(steward.Scope("/")), Settings: ok}, "name"},
		{steward.SourceInput{Name: ptr("123"), Kind: ptr("test"), Scope: ptr(steward.Scope("/")), Settings: ok}, "name"},
		{steward.SourceInput{Name: ptr("a"), Kind: ptr("nope"), Scope: ptr(steward.Scope("/")), Settings: ok}, "kind"},
		{steward.SourceInput{Name: ptr("a"), Kind: ptr("test"), Settings: ok}, "scope"},
		{steward.SourceInput{Name: ptr("a"), Kind: ptr("test"), Scope: ptr(steward.Scope("/")), Schedule: ptr("1m"), Settings: ok}, "schedule"},
		{steward.SourceInput{Name: ptr("a"), Kind: ptr("test"), Scope: ptr(steward.Scope("/")), Schedule: ptr("soon"), Settings: ok}, "schedule"},
		{steward.SourceInput{Name: ptr("a"), Kind: ptr("test"), Scope: ptr(steward.Scope("/")), Settings: json.RawMessage(`{}`)}, "settings.script"},
		{steward.SourceInput{Name: ptr("a"), Kind: ptr("test"), Scope: ptr(steward.Scope("/")), Settings: json.RawMessage(`{"script":"x","bogus":1}`)}, "settings"},
		{steward.SourceInput{Name: ptr("a"), Kind: ptr("test"), Scope: ptr(steward.Scope("/")), Settings: ok, Secrets: map[string]string{"password": "x"}}, "secrets.password"},
	} {
		_, err := b.svc.Create(t.Context(), tc.in, "admin")
		storetest.RequireCode(t, err, steward.CodeInvalid)
		require.Equal(t, tc.field, steward.ErrorField(err), "%v", err)
	}
	rec, err := b.svc.Create(t.Context(), steward.SourceInput{Name: ptr("a"), Kind: ptr("test"), Scope: ptr(steward.Scope("/")), Settings: ok}, "admin")
	require.NoError(t, err)
	require.Equal(t, "1h0m0s", rec.Schedule)
	_, err = b.svc.Create(t.Context(), steward.SourceInput{Name: ptr("a"), Kind: ptr("test"), Scope: ptr(steward.Scope("/")), Settings: ok}, "admin")
	storetest.RequireCode(t, err, steward.CodeConflict)
	require.Equal(t, "name", steward.ErrorField(err))
}

// TestScopeTagsMerge: a source's container tags are merged into the stored
// scope tags: keys people set stay, keys the source reports take its value.
func TestScopeTagsMerge(t *testing.T) {
	b := setup(t, 100)
	require.NoError(t, b.db.WithTx(t.Context(), func(tx *store.Tx) error {
		_, err := tx.SetScopeTags(t.Context(), sub, map[string]string{"owner": "alice@example.com", "env": "dev"}, "bob")
		return err
	}))
	collectortest.SetScript(t.Name(), collectortest.Serve(collectortest.Unit{Unit: unit1,
		Tags: map[steward.Scope]map[string]string{sub: {"env": "prod", "costcenter": "42"}, "/subscriptions/other": {"x": "y"}}}))
	b.run(t, b.source(t, "tags", t.Name()))
	tags, err := b.db.ScopeTagMap(t.Context())
	require.NoError(t, err)
	require.Equal(t, map[string]string{"owner": "alice@example.com", "env": "prod", "costcenter": "42"}, tags[sub])
	_, ok := tags["/subscriptions/other"]
	require.False(t, ok, "tags outside the source's scope are ignored")
}

// TestProgressWhileRunning: a slow pull's observations are applied and
// counted within seconds, before the pull ends.
func TestProgressWhileRunning(t *testing.T) {
	b := setup(t, 5000)
	release := make(chan struct{})
	collectortest.SetScript(t.Name(), func(ctx context.Context, sink pull.Sink, _ secret.String) error {
		for i := range 3 {
			if err := sink.Observe(ctx, unit1, unhealthy("rec-p", res(fmt.Sprint("vm", i)))); err != nil {
				return err
			}
			time.Sleep(1100 * time.Millisecond) // a slow API page
		}
		<-release
		return sink.Done(ctx, unit1)
	})
	src := b.source(t, "slow", t.Name())
	run, _, err := b.svc.Run(t.Context(), src.Name, "admin")
	require.NoError(t, err)
	errc := make(chan error, 1)
	go func() { errc <- b.work(t, run, 1) }()
	require.Eventually(t, func() bool {
		got, err := b.db.FindSourceRun(t.Context(), src.ID, run.ID)
		return err == nil && got.State == steward.SourceRunRunning && got.Observed >= 2 && got.New >= 2
	}, 10*time.Second, 50*time.Millisecond)
	close(release)
	require.NoError(t, <-errc)
}

// TestAbandonedRunIsReplaced: a run left queued or running for hours (its
// job ended without finishing it) is closed as failed, and a new run is
// queued, so a source never stops running for good.
func TestAbandonedRunIsReplaced(t *testing.T) {
	b := setup(t, 100)
	collectortest.SetScript(t.Name(), collectortest.Serve(collectortest.Unit{Unit: unit1}))
	src := b.source(t, "stuck", t.Name())
	old, created, err := b.svc.Run(t.Context(), src.Name, "admin")
	require.NoError(t, err)
	require.True(t, created)
	b.db.Now = func() time.Time { return time.Now().Add(4 * time.Hour) }
	run, created, err := b.svc.Run(t.Context(), src.Name, "admin")
	require.NoError(t, err)
	require.True(t, created)
	require.NotEqual(t, old.ID, run.ID)
	got, err := b.db.FindSourceRun(t.Context(), src.ID, old.ID)
	require.NoError(t, err)
	require.Equal(t, steward.SourceRunFailed, got.State)
	require.Contains(t, got.Error, "abandoned")
}

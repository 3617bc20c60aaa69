// Package ingest applies observation streams to the store: bounded batches
// from the push API in one transaction, and spooled import files in two
// passes (validate everything, then apply in chunks). In the transaction
// of each batch or chunk it gives the assessments that became Unhealthy
// their governance rule assignments (package rules), and queues the
// follow-up work (recommendation summaries; through package assignment,
// the ticket work of assignments a batch made or completed), so a
// committed change never misses it.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/assignment"
	"github.com/stewardhq/steward/internal/jobs"
	"github.com/stewardhq/steward/internal/rules"
	"github.com/stewardhq/steward/internal/source"
	"github.com/stewardhq/steward/internal/store"
)

// Defaults.
const (
	// DefaultChunkSize is how many observations one import transaction
	// applies: large enough to amortize the commit, small enough that the
	// single SQLite writer is released often for the API and River.
	DefaultChunkSize = 5000
	// progressInterval bounds how often progress is reported.
	progressInterval = 250 * time.Millisecond
	// maxRecomputeKeys caps the keys of one recompute job; beyond it the
	// job recomputes every recommendation, which is cheaper than a huge IN.
	maxRecomputeKeys = 10_000
)

// Ingester applies observations to the store. It is safe for concurrent use.
type Ingester struct {
	db        *store.DB
	queue     *jobs.Queue
	assign    *assignment.Service
	rules     *rules.Evaluator
	logger    *slog.Logger
	metrics   *metrics
	chunkSize int

	mu       sync.Mutex
	progress map[int64]Progress // live progress of running imports
}

// New returns an Ingester. Metrics are registered on reg (never the global
// registry); a nil reg registers nothing. A nil queue means no job client:
// recommendation summaries are then recomputed inline after each commit.
//
// Governance rules assign what a batch turns Unhealthy; until
// SetAssignments gives the Ingester an assignment service that can open
// tickets, rules with a ticket skip their assessments (SkipRefused).
func New(db *store.DB, queue *jobs.Queue, logger *slog.Logger, reg prometheus.Registerer) *Ingester {
	in := &Ingester{
		db:        db,
		queue:     queue,
		logger:    logger,
		metrics:   newMetrics(reg),
		chunkSize: DefaultChunkSize,
		progress:  make(map[int64]Progress),
	}
	in.SetAssignments(assignment.New(queue, nil))
	return in
}

// SetAssignments makes the Ingester create and end assignments through
// svc (ticketsync's, which can open tickets, built after the Ingester).
// Call it before the first batch.
func (in *Ingester) SetAssignments(svc *assignment.Service) {
	in.assign = svc
	in.rules = rules.NewEvaluator(in.db, svc, in.logger)
}

// applyRules gives the targets (assessments that became Unhealthy) their
// rule assignments in tx, and records the counts in res. Rules and scope tags
// are loaded once per call, that is per batch or chunk: they are few, and
// a rule change takes effect from the next chunk on.
func (in *Ingester) applyRules(ctx context.Context, tx *store.Tx, res *store.ApplyResult, targets []store.RuleTarget) error {
	if len(targets) == 0 {
		return nil
	}
	env, err := rules.LoadEnv(ctx, in.db)
	if err != nil {
		return fmt.Errorf("load governance rules: %w", err)
	}
	out, err := in.rules.OnArrival(ctx, tx, env, targets)
	if err != nil {
		return err
	}
	res.RuleAssignments, res.RuleSkipped = out.Assigned, out.Skipped
	if len(out.Skipped) > 0 {
		attrs := []any{slog.Int("assigned", out.Assigned), slog.Any("skipped", out.Skipped)}
		if out.Refusal != "" {
			attrs = append(attrs, slog.String("first_refusal", out.Refusal))
		}
		in.logger.WarnContext(ctx, "governance rules skipped assessments", attrs...)
	}
	return nil
}

// Progress is how far an import is.
type Progress struct {
	// Phase is "validating" (pass 1: parse and check everything, nothing
	// written) or "applying" (pass 2: write in chunks).
	Phase string `json:"phase"`
	// Records counts the records (observations) done in this phase.
	Records int `json:"records"`
	// RecordsTotal is how many records the file holds: known once it has
	// been validated, so set while applying (0 while validating).
	RecordsTotal int   `json:"records_total,omitempty"`
	BytesRead    int64 `json:"bytes_read"`
	BytesTotal   int64 `json:"bytes_total"`
}

// The phases of Progress.
const (
	PhaseValidating = "validating"
	PhaseApplying   = "applying"
)

// ApplyBatch validates every observation first, so nothing is written if
// any is bad (a CodeInvalid error naming the 1-based record), then applies
// them all in one transaction that also queues the recomputation of the
// changed recommendations' summaries. Observations without ObservedAt are
// stamped with the store's clock. Meant for bounded batches (the push API);
// use ApplyFile for files.
func (in *Ingester) ApplyBatch(ctx context.Context, obs []steward.Observation) (store.ApplyResult, error) {
	start := time.Now()
	res, err := in.applyBatch(ctx, obs)
	in.metrics.observe(sourceAPI, res, err, time.Since(start))
	if err != nil {
		return store.ApplyResult{}, err
	}
	in.logger.InfoContext(ctx, "batch applied", slog.Int("observations", res.Observations),
		slog.Int("created", res.AssessmentsCreated), slog.Int("changed", res.StatusChanged),
		slog.Int("rule_assignments", res.RuleAssignments))
	return res, nil
}

func (in *Ingester) applyBatch(ctx context.Context, obs []steward.Observation) (store.ApplyResult, error) {
	for i := range obs {
		if err := obs[i].Validate(); err != nil {
			return store.ApplyResult{}, steward.InvalidRecord(i+1, 0, err)
		}
	}
	var res store.ApplyResult
	err := in.db.WithTx(ctx, func(tx *store.Tx) error {
		var err error
		var targets []store.RuleTarget
		res, targets, err = tx.ApplyObservationsForRules(ctx, obs, time.Time{})
		if err != nil {
			return err
		}
		if err := in.applyRules(ctx, tx, &res, targets); err != nil {
			return err
		}
		if err := in.assign.AfterImport(ctx, tx, res); err != nil {
			return err
		}
		return in.queueRecompute(ctx, tx, res.ChangedRecommendations)
	})
	if err != nil {
		return store.ApplyResult{}, fmt.Errorf("apply batch of %d observations: %w", len(obs), err)
	}
	in.recomputeInline(ctx, res.ChangedRecommendations)
	return res, nil
}

// ApplySourceChunk applies one chunk a live source read, the way
// ApplyBatch does (validation, governance rules, assignment follow-ups,
// summaries) in one transaction, marking the assessments it touches as
// reported by mark's source and pull (store.ApplyObservationsFrom). also
// (may be nil) runs last in the same transaction with the chunk's result:
// the source runner records its run's counts there, so counts and data
// commit together. Observations without ObservedAt are stamped with at.
func (in *Ingester) ApplySourceChunk(ctx context.Context, obs []steward.Observation, at time.Time, mark *store.SourceMark,
	also func(tx *store.Tx, res store.ApplyResult) error) (store.ApplyResult, error) {
	start := time.Now()
	var res store.ApplyResult
	err := in.db.WithTx(ctx, func(tx *store.Tx) error {
		var err error
		var targets []store.RuleTarget
		res, targets, err = tx.ApplyObservationsFrom(ctx, obs, at, mark)
		if err != nil {
			return err
		}
		if err := in.applyRules(ctx, tx, &res, targets); err != nil {
			return err
		}
		if err := in.assign.AfterImport(ctx, tx, res); err != nil {
			return err
		}
		if err := in.queueRecompute(ctx, tx, res.ChangedRecommendations); err != nil {
			return err
		}
		if also != nil {
			return also(tx, res)
		}
		return nil
	})
	in.metrics.observe(sourcePull, res, err, time.Since(start))
	if err != nil {
		return store.ApplyResult{}, fmt.Errorf("apply %d observations: %w", len(obs), err)
	}
	in.recomputeInline(ctx, res.ChangedRecommendations)
	return res, nil
}

// queueRecompute queues the summaries job in tx. Nothing to queue without
// keys; without a queue, recomputeInline runs after the commit instead.
func (in *Ingester) queueRecompute(ctx context.Context, tx *store.Tx, keys []string) error {
	if len(keys) == 0 || in.queue == nil {
		return nil
	}
	args := jobs.RecomputeSummariesArgs{Keys: keys}
	if len(keys) > maxRecomputeKeys {
		args.Keys = nil // all
	}
	if err := in.queue.InsertTx(ctx, tx.SQL(), args); err != nil {
		return fmt.Errorf("queue summaries recompute: %w", err)
	}
	return nil
}

func (in *Ingester) recomputeInline(ctx context.Context, keys []string) {
	if len(keys) == 0 || in.queue != nil {
		return
	}
	if len(keys) > maxRecomputeKeys {
		keys = nil
	}
	if err := in.db.RecomputeRecommendationSummaries(ctx, keys); err != nil {
		// The data is committed; stale counts are fixed by the next
		// recompute, so this is worth a warning, not a failed ingest.
		in.logger.WarnContext(ctx, "recompute recommendation summaries", slog.Any("error", err))
	}
}

// ApplyFile applies the file at path, of a known format ("" detects it),
// in two passes. Pass 1 parses and validates the whole file without writing,
// so a malformed or truncated file is rejected (CodeInvalid, naming the
// record) with the store as it was. Pass 2 parses again and applies chunks
// of DefaultChunkSize observations, one transaction each, so the store's
// single writer is released between chunks. The last chunk's transaction
// queues the summaries recomputation for every recommendation in the file:
// not only those this run changed, because after a crash mid-pass-2 the
// retried job finds the earlier chunks already applied and unchanged.
//
// Re-applying a file is idempotent: upserts of identical observations
// change nothing. Observations without ObservedAt are stamped with the time
// pass 2 started, the same for every chunk. progress (may be nil) is called
// at most about four times a second, and at the end of each phase.
func (in *Ingester) ApplyFile(ctx context.Context, path string, format source.Format, progress func(Progress)) (store.ApplyResult, error) {
	return in.applyFileMetered(ctx, path, format, progress, nil)
}

// chunkProgress records the progress an applied chunk reached, in that
// chunk's transaction (nil: not recorded).
type chunkProgress func(ctx context.Context, tx *store.Tx, p Progress) error

func (in *Ingester) applyFileMetered(ctx context.Context, path string, format source.Format, progress func(Progress), chunk chunkProgress) (store.ApplyResult, error) {
	start := time.Now()
	res, err := in.applyFile(ctx, path, format, progress, chunk)
	in.metrics.observe(sourceImport, res, err, time.Since(start))
	if err != nil {
		return store.ApplyResult{}, err
	}
	in.logger.InfoContext(ctx, "file applied", slog.String("format", string(format)),
		slog.Int("observations", res.Observations), slog.Int("created", res.AssessmentsCreated),
		slog.Int("changed", res.StatusChanged), slog.Int("rule_assignments", res.RuleAssignments),
		slog.Duration("took", time.Since(start)))
	return res, nil
}

func (in *Ingester) applyFile(ctx context.Context, path string, format source.Format, progress func(Progress), chunkDone chunkProgress) (store.ApplyResult, error) {
	f, err := os.Open(path)
	if err != nil {
		return store.ApplyResult{}, fmt.Errorf("open import file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return store.ApplyResult{}, fmt.Errorf("stat import file: %w", err)
	}
	total := st.Size()
	if progress == nil {
		progress = func(Progress) {}
	}

	// Pass 1: parse and validate everything; collect the recommendation keys.
	cr := &countingReader{r: f}
	parser, r, format, err := source.Open(cr, format)
	if err != nil {
		return store.ApplyResult{}, err
	}
	rep := reporter{fn: progress, phase: PhaseValidating, total: total, bytes: &cr.n}
	keys := make(map[string]struct{})
	n := 0
	err = parser.Parse(ctx, r, func(o steward.Observation) error {
		n++
		if len(keys) <= maxRecomputeKeys {
			keys[o.Recommendation.Key] = struct{}{}
		}
		rep.tick(n)
		return nil
	})
	if err != nil {
		return store.ApplyResult{}, err
	}
	rep.done(n)
	if n == 0 {
		return store.ApplyResult{}, nil
	}
	allKeys := make([]string, 0, len(keys))
	for k := range keys {
		allKeys = append(allKeys, k)
	}

	// Pass 2: apply in chunks.
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return store.ApplyResult{}, fmt.Errorf("rewind import file: %w", err)
	}
	cr = &countingReader{r: f}
	parser, r, _, err = source.Open(cr, format)
	if err != nil {
		return store.ApplyResult{}, err
	}
	rep = reporter{fn: progress, phase: PhaseApplying, total: total, records: n, bytes: &cr.n}
	at := in.db.Now()
	var res store.ApplyResult
	chunk := make([]steward.Observation, 0, in.chunkSize)
	done := 0
	apply := func(last bool) error {
		err := in.db.WithTx(ctx, func(tx *store.Tx) error {
			r, targets, err := tx.ApplyObservationsForRules(ctx, chunk, at)
			if err != nil {
				return err
			}
			if err := in.applyRules(ctx, tx, &r, targets); err != nil {
				return err
			}
			if err := in.assign.AfterImport(ctx, tx, r); err != nil {
				return err
			}
			if last {
				keys := allKeys
				if len(keys) > maxRecomputeKeys {
					keys = nil
				}
				if in.queue != nil {
					if err := in.queue.InsertTx(ctx, tx.SQL(), jobs.RecomputeSummariesArgs{Keys: keys}); err != nil {
						return fmt.Errorf("queue summaries recompute: %w", err)
					}
				}
			}
			if chunkDone != nil {
				p := Progress{Phase: PhaseApplying, Records: done + len(chunk), RecordsTotal: n, BytesRead: cr.n.Load(), BytesTotal: total}
				if err := chunkDone(ctx, tx, p); err != nil {
					return err
				}
			}
			res.Add(r)
			return nil
		})
		if err != nil {
			return fmt.Errorf("apply records %d-%d: %w", done+1, done+len(chunk), err)
		}
		done += len(chunk)
		chunk = chunk[:0]
		rep.check(done)
		return nil
	}
	seen := 0
	err = parser.Parse(ctx, r, func(o steward.Observation) error {
		seen++
		if len(chunk) == in.chunkSize {
			if err := apply(false); err != nil {
				return err
			}
		}
		chunk = append(chunk, o)
		return nil
	})
	if err != nil {
		return store.ApplyResult{}, err
	}
	if seen != n {
		// The file changed between the passes.
		return store.ApplyResult{}, fmt.Errorf("import file changed while being applied: %d records in pass 1, %d in pass 2", n, seen)
	}
	if err := apply(true); err != nil {
		return store.ApplyResult{}, err
	}
	if in.queue == nil {
		in.recomputeInline(ctx, allKeys)
	}
	rep.done(done)
	return res, nil
}

// countingReader counts the bytes read through it; n is read by the
// progress reporter.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// reporter throttles progress callbacks to one per progressInterval.
type reporter struct {
	fn    func(Progress)
	phase string
	total int64
	// records is the file's record count, once known (RecordsTotal).
	records int
	bytes   *atomic.Int64
	last    time.Time
}

func (r *reporter) tick(records int) {
	// Checking the clock on every record costs more than the parse of a
	// small record; every 256th is often enough.
	if records%256 == 0 {
		r.check(records)
	}
}

// check reports if progressInterval has passed since the last report.
func (r *reporter) check(records int) {
	if now := time.Now(); now.Sub(r.last) >= progressInterval {
		r.last = now
		r.fn(Progress{Phase: r.phase, Records: records, RecordsTotal: r.records, BytesRead: r.bytes.Load(), BytesTotal: r.total})
	}
}

func (r *reporter) done(records int) {
	r.fn(Progress{Phase: r.phase, Records: records, RecordsTotal: r.records, BytesRead: r.bytes.Load(), BytesTotal: r.total})
}

// Progress returns the live progress of an import being processed, if
// any. On PostgreSQL it is what the worker recorded in the database,
// whichever process runs it; on SQLite (one process) it is kept in memory.
// Progress only decorates an import, so a failed read is logged and shows
// none.
func (in *Ingester) Progress(ctx context.Context, importID int64) (Progress, bool) {
	if in.db.Postgres() {
		p, ok, err := in.db.FindImportProgress(ctx, importID)
		if err != nil {
			if ctx.Err() == nil {
				in.logger.WarnContext(ctx, "read import progress", slog.Int64("import_id", importID), slog.Any("err", err))
			}
			return Progress{}, false
		}
		return Progress(p), ok
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	p, ok := in.progress[importID]
	return p, ok
}

// importTracker publishes the progress of one import attempt: on SQLite in
// memory (as often as the reporter calls, about four times a second); on
// PostgreSQL in the database, so every process's API shows it: while
// validating at most once per progressWriteInterval in a statement of its
// own (nothing else is written then), while applying in each chunk's own
// transaction.
type importTracker struct {
	in        *Ingester
	id        int64
	lastWrite time.Time
}

// progressWriteInterval bounds how often validation progress is written to
// the database (PostgreSQL).
const progressWriteInterval = time.Second

func (in *Ingester) trackImport(ctx context.Context, id int64, first Progress) *importTracker {
	t := &importTracker{in: in, id: id}
	t.report(ctx, first)
	return t
}

// report is the reporter's callback.
func (t *importTracker) report(ctx context.Context, p Progress) {
	if !t.in.db.Postgres() {
		t.in.mu.Lock()
		t.in.progress[t.id] = p
		t.in.mu.Unlock()
		return
	}
	if p.Phase != PhaseValidating || time.Since(t.lastWrite) < progressWriteInterval {
		return // applying: written by each chunk
	}
	t.lastWrite = time.Now()
	if err := t.in.db.SetImportProgress(ctx, t.id, store.ImportProgress(p)); err != nil && ctx.Err() == nil {
		t.in.logger.WarnContext(ctx, "record import progress", slog.Int64("import_id", t.id), slog.Any("err", err))
	}
}

// chunk is the chunkProgress of the attempt: nil on SQLite.
func (t *importTracker) chunk() chunkProgress {
	if !t.in.db.Postgres() {
		return nil
	}
	return func(ctx context.Context, tx *store.Tx, p Progress) error {
		return tx.SetImportProgress(ctx, t.id, store.ImportProgress(p))
	}
}

// end removes the attempt's progress.
func (t *importTracker) end(ctx context.Context) {
	if !t.in.db.Postgres() {
		t.in.mu.Lock()
		delete(t.in.progress, t.id)
		t.in.mu.Unlock()
		return
	}
	if err := t.in.db.ClearImportProgress(ctx, t.id); err != nil {
		t.in.logger.WarnContext(ctx, "clear import progress", slog.Int64("import_id", t.id), slog.Any("err", err))
	}
}

// isPermanent reports whether retrying err cannot help: the input is bad
// or the spool file is gone.
func isPermanent(err error) bool {
	return steward.ErrorCode(err) == steward.CodeInvalid || errors.Is(err, os.ErrNotExist)
}

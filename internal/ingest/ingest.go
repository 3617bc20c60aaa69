// Package ingest applies observation streams to the store: bounded batches
// from the push API in one transaction, and spooled import files in one
// pass and one transaction (parsed and applied in chunks, overlapped). In
// the transaction of each batch or chunk it gives the assessments that became Unhealthy
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
	// DefaultChunkSize is how many observations an import applies at a
	// time (an import is one transaction; a chunk is the unit of parsing,
	// rules and progress): large enough to amortize the per-chunk queries,
	// small enough to bound memory.
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

	// progressEvery bounds how often an import's progress is written to
	// the database (PostgreSQL).
	progressEvery time.Duration
	// afterChunk (tests only) runs in the import's transaction after each
	// chunk is applied and its progress reported, with the records applied
	// so far; an error fails the import as a crash would.
	afterChunk func(ctx context.Context, records int) error
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

		progressEvery: progressWriteInterval,
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
	// Phase is "applying" (the one pass: parse, check and write, kept
	// only if the whole file is good). Servers before one-pass imports
	// also said "validating"; the field stays for them.
	Phase string `json:"phase"`
	// Records counts the records applied so far (in the import's
	// transaction, which commits them all at the end).
	Records int `json:"records"`
	// RecordsTotal is how many records the file holds, where known: one
	// pass does not know it before the end, so it is 0 while running.
	RecordsTotal int `json:"records_total,omitempty"`
	// BytesRead is how far the parser has read (a few chunks ahead of
	// Records); with BytesTotal it gives the share done.
	BytesRead  int64 `json:"bytes_read"`
	BytesTotal int64 `json:"bytes_total"`
}

// PhaseApplying is the Phase of a running import.
const PhaseApplying = "applying"

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
// in one pass and one transaction: all of it or, on any error, nothing.
//
// A parser goroutine reads and validates the records and hands chunks of
// chunkSize observations to the applier over a channel holding
// chunksInFlight of them, so parsing and applying overlap and only a few
// chunks are ever in memory. The applier takes the writer when the first
// chunk is ready and applies each chunk in that one transaction the way a
// push batch is applied (governance rules, assignment follow-ups). A bad
// record anywhere (CodeInvalid, naming the record), a failed chunk or a
// cancelled context rolls the whole file back, so the store is exactly as
// it was, and a retried import starts over. The transaction also queues
// the summaries recomputation of the recommendations the file changed.
//
// Re-applying a file is idempotent: upserts of identical observations
// change nothing. Observations without ObservedAt are stamped with the time
// the import started, the same for every chunk. progress (may be nil) is
// called at most about four times a second, and at the end; it counts the
// records applied so far in the (uncommitted) transaction.
func (in *Ingester) ApplyFile(ctx context.Context, path string, format source.Format, progress func(Progress)) (store.ApplyResult, error) {
	return in.applyFileMetered(ctx, path, format, progress)
}

// chunksInFlight is how many parsed chunks wait for the applier: enough
// to keep it busy while the parser meets a slow stretch of the file, few
// enough that memory stays bounded (a chunk of 5,000 observations is a
// few MB).
const chunksInFlight = 2

func (in *Ingester) applyFileMetered(ctx context.Context, path string, format source.Format, progress func(Progress)) (store.ApplyResult, error) {
	start := time.Now()
	res, err := in.applyFile(ctx, path, format, progress)
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

func (in *Ingester) applyFile(ctx context.Context, path string, format source.Format, progress func(Progress)) (store.ApplyResult, error) {
	f, err := os.Open(path)
	if err != nil {
		return store.ApplyResult{}, fmt.Errorf("open import file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return store.ApplyResult{}, fmt.Errorf("stat import file: %w", err)
	}
	if progress == nil {
		progress = func(Progress) {}
	}
	cr := &countingReader{r: f}
	parser, r, _, err := source.Open(cr, format)
	if err != nil {
		return store.ApplyResult{}, err
	}
	at := in.db.Now()
	rep := reporter{fn: progress, phase: PhaseApplying, total: st.Size(), bytes: &cr.n}

	ctx, cancel := context.WithCancel(ctx)
	p := &chunkParser{size: in.chunkSize, chunks: make(chan []steward.Observation, chunksInFlight),
		free: make(chan []steward.Observation, chunksInFlight+2), err: make(chan error, 1)}
	go p.run(ctx, parser, r)
	// On every way out the parser stops (it reads f, which the deferred
	// Close closes) before applyFile returns.
	defer func() {
		cancel()
		for range p.chunks {
		}
	}()

	// The writer is taken once the first chunk is ready: a file that is
	// empty or bad early never holds it.
	first, ok := <-p.chunks
	if !ok {
		if err := <-p.err; err != nil {
			return store.ApplyResult{}, err
		}
		rep.done(0)
		return store.ApplyResult{}, nil
	}
	var res store.ApplyResult
	done := 0
	err = in.db.WithTx(ctx, func(tx *store.Tx) error {
		for chunk := first; ; {
			r, err := in.applyChunk(ctx, tx, chunk, at)
			if err != nil {
				return fmt.Errorf("apply records %d-%d: %w", done+1, done+len(chunk), err)
			}
			res.Add(r)
			done += len(chunk)
			rep.check(done)
			if in.afterChunk != nil {
				if err := in.afterChunk(ctx, done); err != nil {
					return err
				}
			}
			p.recycle(chunk)
			if p.failed.Load() {
				break // a bad record further on: do not apply what is left
			}
			if chunk, ok = <-p.chunks; !ok {
				break
			}
		}
		if err := <-p.err; err != nil {
			return err
		}
		// All or nothing: what this transaction changed is exactly what
		// the summaries must catch up with.
		return in.queueRecompute(ctx, tx, res.ChangedRecommendations)
	})
	if cerr := ctx.Err(); err != nil && cerr != nil && !errors.Is(err, cerr) {
		// Stopped (shutdown): say so, whatever statement noticed first.
		err = fmt.Errorf("import stopped after %d records: %w (%w)", done, cerr, err)
	}
	if err != nil {
		return store.ApplyResult{}, err
	}
	in.recomputeInline(ctx, res.ChangedRecommendations)
	rep.done(done)
	return res, nil
}

// applyChunk applies one chunk of a file in tx: the observations, the
// governance rule assignments of those that became Unhealthy, and the
// assignment follow-ups.
func (in *Ingester) applyChunk(ctx context.Context, tx *store.Tx, chunk []steward.Observation, at time.Time) (store.ApplyResult, error) {
	r, targets, err := tx.ApplyObservationsForRules(ctx, chunk, at)
	if err != nil {
		return store.ApplyResult{}, err
	}
	if err := in.applyRules(ctx, tx, &r, targets); err != nil {
		return store.ApplyResult{}, err
	}
	if err := in.assign.AfterImport(ctx, tx, r); err != nil {
		return store.ApplyResult{}, err
	}
	return r, nil
}

// chunkParser is the parsing side of ApplyFile: it parses the file into
// chunks, sends them on chunks (closed when the parse ends) and then its
// outcome on err. The applier hands applied chunks back on free, so a
// file reuses a few chunks' memory.
type chunkParser struct {
	size   int
	chunks chan []steward.Observation
	free   chan []steward.Observation
	err    chan error
	// failed is set when the parse failed, before chunks is closed: the
	// applier stops at once instead of applying the chunks still queued.
	failed atomic.Bool
}

func (p *chunkParser) run(ctx context.Context, parser source.Parser, r io.Reader) {
	chunk := make([]steward.Observation, 0, p.size)
	send := func() error {
		select {
		case p.chunks <- chunk:
		case <-ctx.Done():
			return ctx.Err()
		}
		select {
		case chunk = <-p.free:
		default:
			chunk = make([]steward.Observation, 0, p.size)
		}
		return nil
	}
	err := parser.Parse(ctx, r, func(o steward.Observation) error {
		chunk = append(chunk, o)
		if len(chunk) == p.size {
			return send()
		}
		return nil
	})
	if err == nil && len(chunk) > 0 {
		err = send()
	}
	if err != nil {
		p.failed.Store(true)
	}
	p.err <- err
	close(p.chunks)
}

// recycle gives an applied chunk back to the parser. Nothing the store
// returned refers to its observations.
func (p *chunkParser) recycle(chunk []steward.Observation) {
	clear(chunk) // drop the strings and maps it holds until it is refilled
	select {
	case p.free <- chunk[:0]:
	default:
	}
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
	bytes *atomic.Int64
	last  time.Time
}

// check reports if progressInterval has passed since the last report.
func (r *reporter) check(records int) {
	if now := time.Now(); now.Sub(r.last) >= progressInterval {
		r.last = now
		r.fn(Progress{Phase: r.phase, Records: records, BytesRead: r.bytes.Load(), BytesTotal: r.total})
	}
}

// done reports the end: every record applied and committed.
func (r *reporter) done(records int) {
	r.fn(Progress{Phase: r.phase, Records: records, RecordsTotal: records, BytesRead: r.bytes.Load(), BytesTotal: r.total})
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
// PostgreSQL in the database, so every process's API shows it, at most
// once per progressEvery in a statement of its own. It cannot be written
// in the import's transaction, which nobody else sees until it commits.
type importTracker struct {
	in        *Ingester
	id        int64
	lastWrite time.Time
}

// progressWriteInterval is the default of Ingester.progressEvery.
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
	if time.Since(t.lastWrite) < t.in.progressEvery {
		return
	}
	t.lastWrite = time.Now()
	if err := t.in.db.SetImportProgress(ctx, t.id, store.ImportProgress(p)); err != nil && ctx.Err() == nil {
		t.in.logger.WarnContext(ctx, "record import progress", slog.Int64("import_id", t.id), slog.Any("err", err))
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

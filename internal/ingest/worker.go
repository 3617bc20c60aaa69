package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/riverqueue/river"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/jobs"
	"github.com/stewardhq/steward/internal/source"
	"github.com/stewardhq/steward/internal/store"
)

// importTimeout bounds one attempt of an import. River's default (one
// minute) is far too short for a million-record file.
const importTimeout = 12 * time.Minute

// ImportWorker processes jobs.ImportArgs: it marks the import running,
// applies its spool file with ApplyFile, and marks it succeeded (with the
// result) or failed (with the error). Bad input (CodeInvalid) or a missing
// spool file is permanent: the job is cancelled, not retried. Other errors
// are retried by River; the import goes back to queued with the error until
// the last attempt, which marks it failed. The spool file is deleted once
// the import has succeeded or failed for good. A job for an import that
// already succeeded does nothing, so duplicate runs are harmless.
type ImportWorker struct {
	river.WorkerDefaults[jobs.ImportArgs]
	in *Ingester
}

// NewImportWorker returns the worker for import jobs.
func NewImportWorker(in *Ingester) *ImportWorker { return &ImportWorker{in: in} }

// Timeout lets an import run far longer than River's default.
func (w *ImportWorker) Timeout(*river.Job[jobs.ImportArgs]) time.Duration { return importTimeout }

// Work processes one import.
func (w *ImportWorker) Work(ctx context.Context, job *river.Job[jobs.ImportArgs]) error {
	in := w.in
	id := job.Args.ImportID
	logger := in.logger.With(slog.Int64("import_id", id), slog.Int("attempt", job.Attempt))
	imp, err := in.db.FindImportByID(ctx, id)
	if steward.ErrorCode(err) == steward.CodeNotFound {
		logger.WarnContext(ctx, "import job for unknown import")
		return river.JobCancel(err)
	}
	if err != nil {
		return err
	}
	if imp.State == store.ImportSucceeded {
		return nil
	}
	if err := in.db.UpdateImport(ctx, id, store.ImportRunning, "", nil); err != nil {
		return err
	}
	track := in.trackImport(ctx, id, Progress{Phase: PhaseApplying, BytesTotal: imp.Size})
	defer track.end(context.WithoutCancel(ctx))

	res, err := in.applyFileMetered(ctx, imp.SpoolPath, source.Format(imp.Format), func(p Progress) { track.report(ctx, p) })
	// Record the outcome even if the job's context is done (shutdown).
	octx := context.WithoutCancel(ctx)
	switch {
	case err == nil:
		if uerr := in.db.UpdateImport(octx, id, store.ImportSucceeded, "", &res); uerr != nil {
			return uerr
		}
		w.removeSpool(octx, logger, imp.SpoolPath)
		logger.InfoContext(ctx, "import succeeded", slog.Int("observations", res.Observations))
		return nil
	case isPermanent(err):
		msg := steward.ErrorMessage(err)
		if errors.Is(err, os.ErrNotExist) {
			msg = "the uploaded file is no longer on the server; upload it again"
		}
		if uerr := in.db.UpdateImport(octx, id, store.ImportFailed, msg, nil); uerr != nil {
			return uerr
		}
		w.removeSpool(octx, logger, imp.SpoolPath)
		logger.InfoContext(ctx, "import rejected", slog.String("reason", msg))
		return river.JobCancel(err)
	case job.Attempt >= job.MaxAttempts:
		if uerr := in.db.UpdateImport(octx, id, store.ImportFailed, steward.ErrorMessage(err), nil); uerr != nil {
			return uerr
		}
		// Keep the spool: an operator may want to retry the job by hand.
		logger.ErrorContext(ctx, "import failed, no attempts left", slog.Any("error", err))
		return err
	default:
		msg := fmt.Sprintf("attempt %d failed, will retry: %s", job.Attempt, steward.ErrorMessage(err))
		if uerr := in.db.UpdateImport(octx, id, store.ImportQueued, msg, nil); uerr != nil {
			logger.WarnContext(ctx, "record import retry", slog.Any("error", uerr))
		}
		logger.WarnContext(ctx, "import attempt failed", slog.Any("error", err))
		return err
	}
}

func (w *ImportWorker) removeSpool(ctx context.Context, logger *slog.Logger, path string) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		logger.WarnContext(ctx, "remove spool file", slog.Any("error", err))
	}
}

// RecomputeWorker processes jobs.RecomputeSummariesArgs.
type RecomputeWorker struct {
	river.WorkerDefaults[jobs.RecomputeSummariesArgs]
	db *store.DB
}

// NewRecomputeWorker returns the worker for summary recomputation jobs.
func NewRecomputeWorker(db *store.DB) *RecomputeWorker { return &RecomputeWorker{db: db} }

// Work recomputes the summaries of the job's keys (all when none).
// Recomputing is idempotent, so retries and duplicates are harmless.
func (w *RecomputeWorker) Work(ctx context.Context, job *river.Job[jobs.RecomputeSummariesArgs]) error {
	return w.db.RecomputeRecommendationSummaries(ctx, job.Args.Keys)
}

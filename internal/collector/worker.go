package collector

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/jobs"
	"github.com/stewardhq/steward/internal/source/pull"
	"github.com/stewardhq/steward/internal/store"
)

// pullTimeout bounds one pull attempt. It stays under the server's
// stuck-job rescue (15 minutes), so a pull still running is never started
// a second time beside itself.
const pullTimeout = 12 * time.Minute

// ScheduleInterval is how often the schedule looks for due sources.
const ScheduleInterval = 30 * time.Second

// PullWorker runs source_pull jobs.
type PullWorker struct {
	river.WorkerDefaults[jobs.SourcePullArgs]
	s *Service
}

// NewPullWorker returns the worker of source_pull jobs.
func NewPullWorker(s *Service) *PullWorker { return &PullWorker{s: s} }

// Timeout bounds one attempt.
func (w *PullWorker) Timeout(*river.Job[jobs.SourcePullArgs]) time.Duration { return pullTimeout }

// Work runs one attempt of a run. A retried attempt (the process died, the
// service failed) pulls again from the start with its counts reset;
// applying is idempotent, so nothing is applied twice.
func (w *PullWorker) Work(ctx context.Context, job *river.Job[jobs.SourcePullArgs]) error {
	s := w.s
	db := s.db
	run, err := db.FindSourceRun(ctx, job.Args.SourceID, job.Args.RunID)
	if steward.ErrorCode(err) == steward.CodeNotFound {
		return river.JobCancel(err)
	}
	if err != nil {
		return err
	}
	if run.State.Finished() {
		return nil
	}
	logger := s.logger.With(slog.Int64("source_id", run.SourceID), slog.Int64("run_id", run.ID), slog.Int("attempt", job.Attempt))
	octx := context.WithoutCancel(ctx)
	finish := func(state steward.SourceRunState, msg string) error {
		run.State, run.Error = state, msg
		return db.WithTx(octx, func(tx *store.Tx) error { return tx.UpdateSourceRun(octx, run) })
	}
	src, err := db.FindSource(ctx, fmt.Sprint(run.SourceID))
	if steward.ErrorCode(err) == steward.CodeNotFound {
		if ferr := finish(steward.SourceRunFailed, "the source was deleted before the run ended"); ferr != nil {
			return ferr
		}
		return river.JobCancel(err)
	}
	if err != nil {
		return err
	}
	logger = logger.With(slog.String("source", src.Name), slog.String("kind", src.Kind))
	puller, err := s.puller(ctx, src)
	if err != nil {
		if ferr := finish(steward.SourceRunFailed, steward.ErrorMessage(err)); ferr != nil {
			return ferr
		}
		logger.WarnContext(ctx, "source run cannot start", slog.String("reason", steward.ErrorMessage(err)))
		if steward.ErrorCode(err) == steward.CodeInvalid {
			return river.JobCancel(err)
		}
		return err
	}

	// Start the attempt: a new pull number, counts from zero.
	now := db.Now()
	*run = steward.SourceRun{ID: run.ID, SourceID: run.SourceID, State: steward.SourceRunRunning, Attempt: job.Attempt,
		Units: []steward.SourceUnit{}, RequestedBy: run.RequestedBy, CreatedAt: run.CreatedAt, StartedAt: &now}
	var seq int64
	err = db.WithTx(ctx, func(tx *store.Tx) error {
		var err error
		if seq, err = tx.NextSourcePull(ctx, src.ID); err != nil {
			return err
		}
		return tx.UpdateSourceRun(ctx, run)
	})
	if err != nil {
		return err
	}
	k := &sink{s: s, src: src, run: run, mark: store.SourceMark{SourceID: src.ID, Pull: seq}, units: map[string]int{}, logger: logger,
		flushed: time.Now()}
	err = puller.Pull(ctx, k)
	if err == nil {
		err = k.flush(ctx)
	}
	if err != nil {
		if job.Attempt < job.MaxAttempts && steward.ErrorCode(err) != steward.CodeInvalid {
			run.Error = fmt.Sprintf("attempt %d failed, will retry: %s", job.Attempt, steward.ErrorMessage(err))
			if uerr := db.WithTx(octx, func(tx *store.Tx) error { return tx.UpdateSourceRun(octx, run) }); uerr != nil {
				logger.WarnContext(ctx, "record source run retry", slog.Any("error", uerr))
			}
			logger.WarnContext(ctx, "source run attempt failed", slog.String("error", steward.ErrorMessage(err)))
			return err
		}
		if ferr := finish(steward.SourceRunFailed, steward.ErrorMessage(err)); ferr != nil {
			return ferr
		}
		logger.ErrorContext(ctx, "source run failed", slog.String("error", steward.ErrorMessage(err)))
		return river.JobCancel(err)
	}
	state := steward.SourceRunDone
	failed := 0
	for i := range run.Units {
		if u := &run.Units[i]; !u.Done {
			failed++
			if u.Error == "" {
				u.Error = "the provider did not report the unit read completely; nothing was marked gone"
			}
		}
	}
	switch {
	case len(run.Units) > 0 && failed == len(run.Units):
		state = steward.SourceRunFailed
	case failed > 0 || run.Errors > 0:
		state = steward.SourceRunPartial
	}
	msg := ""
	if state == steward.SourceRunFailed {
		msg = "every unit failed: " + run.Units[0].Error
	}
	if err := finish(state, msg); err != nil {
		return err
	}
	logger.InfoContext(ctx, "source run ended", slog.String("state", string(state)), slog.Int("observed", run.Observed),
		slog.Int("new", run.New), slog.Int("changed", run.Changed), slog.Int("gone", run.Gone), slog.Int("errors", run.Errors))
	return nil
}

// puller builds src's Puller with its decrypted secrets.
func (s *Service) puller(ctx context.Context, src *store.SourceRecord) (pull.Puller, error) {
	k, err := s.kind(src.Kind)
	if err != nil {
		return nil, err
	}
	secrets, err := s.db.FindSourceSecrets(ctx, src.ID)
	if err != nil {
		return nil, err
	}
	env := s.env(src)
	if env.Logger == nil {
		env.Logger = s.logger.With(slog.String("source", src.Name))
	}
	if env.Now == nil {
		env.Now = s.db.Now
	}
	p, err := k.New(src.Settings, secrets, env)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// ScheduleWorker runs source_schedule jobs: it queues the runs that are due.
type ScheduleWorker struct {
	river.WorkerDefaults[jobs.SourceScheduleArgs]
	s *Service
}

// NewScheduleWorker returns the worker of source_schedule jobs.
func NewScheduleWorker(s *Service) *ScheduleWorker { return &ScheduleWorker{s: s} }

// Work queues the due runs.
func (w *ScheduleWorker) Work(ctx context.Context, _ *river.Job[jobs.SourceScheduleArgs]) error {
	n, err := w.s.Schedule(ctx)
	if n > 0 {
		w.s.logger.InfoContext(ctx, "scheduled source runs queued", slog.Int("runs", n))
	}
	return err
}

// PeriodicJobs are the River periodic jobs of sources: the schedule tick.
func PeriodicJobs() []*river.PeriodicJob {
	return []*river.PeriodicJob{river.NewPeriodicJob(river.PeriodicInterval(ScheduleInterval),
		func() (river.JobArgs, *river.InsertOpts) { return jobs.SourceScheduleArgs{}, nil },
		&river.PeriodicJobOpts{RunOnStart: true})}
}

// AddWorkers registers the source workers.
func AddWorkers(workers *river.Workers, s *Service) {
	river.AddWorker(workers, NewPullWorker(s))
	river.AddWorker(workers, NewScheduleWorker(s))
}

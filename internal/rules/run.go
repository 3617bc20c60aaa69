package rules

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/riverqueue/river"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/jobs"
	"github.com/stewardhq/steward/internal/store"
)

// runPage is how many assessments one transaction of a rule run handles:
// the writer is released between pages, and each page's commit updates
// the run's counts, which is its progress.
const runPage = 500

// Run applies rule r, as if enabled, to the Unhealthy assessments in its
// scope that exist: each it wins for (Winner among the enabled rules) and
// that has no active assignment gets one; with run.Override, an active
// assignment another or an earlier run of a rule made is ended ("replaced
// by rule <name>") and replaced, one a person made never. Run fills run's
// counts; unless dryRun it writes them with each page, in the page's
// transaction. dryRun writes nothing.
func (e *Evaluator) Run(ctx context.Context, r *steward.Rule, run *store.RuleRun, dryRun bool) error {
	env, err := LoadEnv(ctx, e.db)
	if err != nil {
		return err
	}
	if !r.Enabled {
		on := *r
		on.Enabled = true
		r = &on
	}
	env = env.with(r)
	if run.Total, err = e.db.CountUnhealthyInScope(ctx, r.Scope); err != nil {
		return err
	}
	run.Scanned, run.Assigned, run.Replaced, run.Skipped = 0, 0, 0, map[string]int{}
	var after int64
	for {
		page, err := e.db.UnhealthyInScope(ctx, r.Scope, after, runPage)
		if err != nil {
			return err
		}
		if len(page) == 0 {
			return nil
		}
		after = page[len(page)-1].AssessmentID
		ids := make([]int64, len(page))
		for i, t := range page {
			ids[i] = t.AssessmentID
		}
		if dryRun {
			active, err := e.db.ActiveAssignmentsOf(ctx, ids)
			if err != nil {
				return err
			}
			out, err := e.runPage(ctx, nil, env, r, run, page, active)
			if err != nil {
				return err
			}
			addOutcome(run, out, len(page))
			continue
		}
		err = e.db.WithTx(ctx, func(tx *store.Tx) error {
			active, err := tx.ActiveAssignmentsOf(ctx, ids)
			if err != nil {
				return err
			}
			out, err := e.runPage(ctx, tx, env, r, run, page, active)
			if err != nil {
				return err
			}
			next := *run
			next.Skipped = copyCounts(run.Skipped)
			addOutcome(&next, out, len(page))
			if err := tx.UpdateRuleRun(ctx, &next); err != nil {
				return err
			}
			*run = next
			return nil
		})
		if err != nil {
			return err
		}
	}
}

// with returns env with r in place of the stored rule of its ID.
func (env *Env) with(r *steward.Rule) *Env {
	out := *env
	out.Rules = []*steward.Rule{r}
	for _, o := range env.Rules {
		if o.ID != r.ID {
			out.Rules = append(out.Rules, o)
		}
	}
	return &out
}

func (e *Evaluator) runPage(ctx context.Context, tx *store.Tx, env *Env, r *steward.Rule, run *store.RuleRun,
	page []store.RuleTarget, active map[int64]store.ActiveAssignment) (Outcome, error) {
	var out Outcome
	for _, t := range page {
		tg := target(t)
		if !Applies(r, tg.Resource.ID) {
			continue
		}
		w, cond := env.winner(tg)
		if w == nil {
			continue
		}
		if w.ID != r.ID {
			e.skipped(ctx, &out, r, t, SkipOutranked, nil)
			continue
		}
		var replace int64
		if a, ok := active[t.AssessmentID]; ok {
			switch {
			case !run.Override:
				e.skipped(ctx, &out, r, t, SkipAssigned, nil)
				continue
			case a.RuleID == 0:
				e.skipped(ctx, &out, r, t, SkipManual, nil)
				continue
			case a.RuleID == r.ID && run.StartedAt != nil && !a.CreatedAt.Before(*run.StartedAt):
				// Made by an earlier attempt of this run (a retry after
				// a crash): replacing it again would open a second ticket.
				e.skipped(ctx, &out, r, t, SkipAssigned, nil)
				continue
			}
			replace = a.ID
		}
		req, reason := e.request(env, r, cond, tg)
		if reason != "" {
			e.skipped(ctx, &out, r, t, reason, nil)
			continue
		}
		if tx == nil {
			out.Assigned++
			if replace != 0 {
				out.Replaced++
			}
			continue
		}
		if err := e.create(ctx, tx, r, t, req, replace, &out); err != nil {
			return out, err
		}
	}
	return out, nil
}

func addOutcome(run *store.RuleRun, out Outcome, scanned int) {
	run.Scanned += scanned
	run.Assigned += out.Assigned
	run.Replaced += out.Replaced
	for k, n := range out.Skipped {
		run.Skipped[k] += n
	}
}

func copyCounts(m map[string]int) map[string]int {
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// runTimeout bounds one attempt of a rule run; like an import's, it stays
// below the server's stuck-job rescue (15 minutes).
const runTimeout = 12 * time.Minute

// RunWorker processes jobs.RuleRunArgs: it runs the rule of the run row
// (Evaluator.Run) and records the outcome there. A run that failed is
// recorded failed with its error and not retried; a job for a run that
// has finished does nothing.
type RunWorker struct {
	river.WorkerDefaults[jobs.RuleRunArgs]
	eval   *Evaluator
	logger *slog.Logger
}

// NewRunWorker returns the worker for rule runs.
func NewRunWorker(eval *Evaluator, logger *slog.Logger) *RunWorker {
	return &RunWorker{eval: eval, logger: logger}
}

// Timeout lets a run over many assessments take longer than River's
// default minute.
func (w *RunWorker) Timeout(*river.Job[jobs.RuleRunArgs]) time.Duration { return runTimeout }

// Work runs one rule run.
func (w *RunWorker) Work(ctx context.Context, job *river.Job[jobs.RuleRunArgs]) error {
	db := w.eval.db
	run, err := db.FindRuleRunByID(ctx, job.Args.RunID)
	if steward.ErrorCode(err) == steward.CodeNotFound {
		return river.JobCancel(err)
	}
	if err != nil {
		return err
	}
	if run.Done() {
		return nil
	}
	logger := w.logger.With(slog.Int64("run_id", run.ID), slog.String("rule", run.RuleName), slog.Int("attempt", job.Attempt))
	octx := context.WithoutCancel(ctx)
	finish := func(state store.RuleRunState, msg string) error {
		run.State, run.Error = state, msg
		return db.WithTx(octx, func(tx *store.Tx) error { return tx.UpdateRuleRun(octx, run) })
	}
	r, err := db.FindRule(ctx, strconv.FormatInt(run.RuleID, 10))
	if steward.ErrorCode(err) == steward.CodeNotFound {
		msg := "rule " + strconv.Quote(run.RuleName) + " was deleted before the run started"
		if ferr := finish(store.RuleRunFailed, msg); ferr != nil {
			return ferr
		}
		return river.JobCancel(err)
	}
	if err != nil {
		return err
	}
	run.State = store.RuleRunRunning
	if err := db.WithTx(ctx, func(tx *store.Tx) error { return tx.UpdateRuleRun(ctx, run) }); err != nil {
		return err
	}
	if err := w.eval.Run(ctx, r, run, false); err != nil {
		if job.Attempt < job.MaxAttempts && steward.ErrorCode(err) != steward.CodeInvalid {
			logger.WarnContext(ctx, "rule run attempt failed", slog.Any("err", err))
			return err
		}
		if ferr := finish(store.RuleRunFailed, steward.ErrorMessage(err)); ferr != nil {
			return ferr
		}
		logger.ErrorContext(ctx, "rule run failed", slog.Any("err", err))
		return river.JobCancel(err)
	}
	if err := finish(store.RuleRunSucceeded, ""); err != nil {
		return err
	}
	logger.InfoContext(ctx, "rule run succeeded", slog.Int("scanned", run.Scanned), slog.Int("assigned", run.Assigned),
		slog.Int("replaced", run.Replaced), slog.Any("skipped", run.Skipped))
	return nil
}

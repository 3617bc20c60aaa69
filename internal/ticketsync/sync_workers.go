package ticketsync

import (
	"context"
	"errors"
	"time"

	"github.com/riverqueue/river"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/itsm"
	"github.com/stewardhq/steward/internal/jobs"
)

// syncOutcome maps a sync error onto River: a vanished row (integration,
// assignment, unlinked record) cancels; a throttled ITSM snoozes for its
// Retry-After (not a failed attempt); a refused request cancels; a ticket
// still being created snoozes; anything else is retried with backoff.
func syncOutcome(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, errNotYet) {
		return river.JobSnooze(5 * time.Second)
	}
	ierr, isITSM := errors.AsType[*itsm.Error](err)
	switch {
	case !isITSM && steward.ErrorCode(err) == steward.CodeNotFound:
		return river.JobCancel(err)
	case isITSM && ierr.Retryable && ierr.RetryAfter > 0:
		return river.JobSnooze(ierr.RetryAfter)
	case isITSM && !ierr.Retryable:
		return river.JobCancel(err)
	}
	return err
}

// RefreshTicketWorker runs ticket_refresh jobs (queued by the webhook).
type RefreshTicketWorker struct {
	river.WorkerDefaults[jobs.RefreshTicketArgs]
	svc *Service
}

// NewRefreshTicketWorker returns the worker.
func NewRefreshTicketWorker(s *Service) *RefreshTicketWorker { return &RefreshTicketWorker{svc: s} }

// Timeout bounds one refresh (one read, retries inside the client).
func (w *RefreshTicketWorker) Timeout(*river.Job[jobs.RefreshTicketArgs]) time.Duration {
	return 5 * time.Minute
}

// Work re-reads the record unless the stored ticket is already at or past
// the announced sys_mod_count (a duplicate or late delivery), then applies
// it. A record that is not linked is nothing to do.
func (w *RefreshTicketWorker) Work(ctx context.Context, job *river.Job[jobs.RefreshTicketArgs]) error {
	a := job.Args
	if a.ModCount > 0 {
		if t, err := w.svc.db.FindTicketBySysID(ctx, a.IntegrationID, a.SysID); err == nil && t.ModCount >= a.ModCount {
			w.svc.sync.metrics.applied.WithLabelValues(ViaWebhook, "stale").Inc()
			return nil
		}
	}
	_, err := w.svc.RefreshTicket(ctx, a.IntegrationID, a.Table, a.SysID)
	if steward.ErrorCode(err) == steward.CodeNotFound && !itsm.IsKind(err, itsm.KindNotFound) {
		return nil
	}
	return syncOutcome(err)
}

// PollWorker runs sync_poll jobs.
type PollWorker struct {
	river.WorkerDefaults[jobs.PollArgs]
	svc *Service
}

// NewPollWorker returns the worker.
func NewPollWorker(s *Service) *PollWorker { return &PollWorker{svc: s} }

// Timeout allows for a first poll over many records.
func (w *PollWorker) Timeout(*river.Job[jobs.PollArgs]) time.Duration { return 30 * time.Minute }

// Work polls, then queues the reconcile a sync-now asked for.
func (w *PollWorker) Work(ctx context.Context, job *river.Job[jobs.PollArgs]) error {
	if _, err := w.svc.Poll(ctx, job.Args.IntegrationID); err != nil {
		return syncOutcome(err)
	}
	if job.Args.Reconcile {
		return w.svc.queue.Insert(ctx, jobs.ReconcileArgs{IntegrationID: job.Args.IntegrationID, Request: job.Args.Request})
	}
	return nil
}

// ReconcileWorker runs sync_reconcile jobs.
type ReconcileWorker struct {
	river.WorkerDefaults[jobs.ReconcileArgs]
	svc *Service
}

// NewReconcileWorker returns the worker.
func NewReconcileWorker(s *Service) *ReconcileWorker { return &ReconcileWorker{svc: s} }

// Timeout allows for very many linked tickets at a low request rate.
func (w *ReconcileWorker) Timeout(*river.Job[jobs.ReconcileArgs]) time.Duration { return 2 * time.Hour }

// Work reconciles.
func (w *ReconcileWorker) Work(ctx context.Context, job *river.Job[jobs.ReconcileArgs]) error {
	_, err := w.svc.Reconcile(ctx, job.Args.IntegrationID)
	return syncOutcome(err)
}

// ScheduleWorker runs the periodic sync_schedule job.
type ScheduleWorker struct {
	river.WorkerDefaults[jobs.SyncScheduleArgs]
	svc *Service
}

// NewScheduleWorker returns the worker.
func NewScheduleWorker(s *Service) *ScheduleWorker { return &ScheduleWorker{svc: s} }

// Work queues due polls and reconciles.
func (w *ScheduleWorker) Work(ctx context.Context, _ *river.Job[jobs.SyncScheduleArgs]) error {
	return w.svc.Schedule(ctx)
}

// UpdateOwnerWorker runs ticket_update_owner jobs.
type UpdateOwnerWorker struct {
	river.WorkerDefaults[jobs.UpdateOwnerArgs]
	svc *Service
}

// NewUpdateOwnerWorker returns the worker.
func NewUpdateOwnerWorker(s *Service) *UpdateOwnerWorker { return &UpdateOwnerWorker{svc: s} }

// Work pushes the owner.
func (w *UpdateOwnerWorker) Work(ctx context.Context, job *river.Job[jobs.UpdateOwnerArgs]) error {
	return syncOutcome(w.svc.PushOwner(ctx, job.Args.AssignmentID))
}

// ResolveTicketWorker runs ticket_resolve jobs.
type ResolveTicketWorker struct {
	river.WorkerDefaults[jobs.ResolveTicketArgs]
	svc *Service
}

// NewResolveTicketWorker returns the worker.
func NewResolveTicketWorker(s *Service) *ResolveTicketWorker { return &ResolveTicketWorker{svc: s} }

// Work resolves the ticket.
func (w *ResolveTicketWorker) Work(ctx context.Context, job *river.Job[jobs.ResolveTicketArgs]) error {
	return syncOutcome(w.svc.ResolveTicket(ctx, job.Args.AssignmentID))
}

// ClosedNotFixedWorker runs ticket_closed_not_fixed jobs.
type ClosedNotFixedWorker struct {
	river.WorkerDefaults[jobs.ClosedNotFixedArgs]
	svc *Service
}

// NewClosedNotFixedWorker returns the worker.
func NewClosedNotFixedWorker(s *Service) *ClosedNotFixedWorker { return &ClosedNotFixedWorker{svc: s} }

// Work applies the policy.
func (w *ClosedNotFixedWorker) Work(ctx context.Context, job *river.Job[jobs.ClosedNotFixedArgs]) error {
	return syncOutcome(w.svc.ApplyClosedNotFixed(ctx, job.Args.AssignmentID))
}

// GroupNoteWorker runs ticket_group_note jobs.
type GroupNoteWorker struct {
	river.WorkerDefaults[jobs.GroupNoteArgs]
	svc *Service
}

// NewGroupNoteWorker returns the worker.
func NewGroupNoteWorker(s *Service) *GroupNoteWorker { return &GroupNoteWorker{svc: s} }

// Work writes the note.
func (w *GroupNoteWorker) Work(ctx context.Context, job *river.Job[jobs.GroupNoteArgs]) error {
	return syncOutcome(w.svc.NoteGroupMember(ctx, job.Args.AssignmentID, job.Args.Fixed))
}

// AddWorkers registers every sync worker.
func AddWorkers(workers *river.Workers, s *Service) {
	river.AddWorker(workers, NewRefreshTicketWorker(s))
	river.AddWorker(workers, NewPollWorker(s))
	river.AddWorker(workers, NewReconcileWorker(s))
	river.AddWorker(workers, NewScheduleWorker(s))
	river.AddWorker(workers, NewUpdateOwnerWorker(s))
	river.AddWorker(workers, NewResolveTicketWorker(s))
	river.AddWorker(workers, NewClosedNotFixedWorker(s))
	river.AddWorker(workers, NewGroupNoteWorker(s))
}

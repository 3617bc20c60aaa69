package ticketsync

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/riverqueue/river"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/itsm"
	"github.com/stewardhq/steward/internal/jobs"
)

// CreateTicket creates the ITSM record of one assignment, exactly once.
//
// Each try first records an attempt in the store. The first try of a ticket
// therefore knows no earlier request can have reached the ITSM and lets the
// provider create directly (one HTTP request); any later try - after a
// timeout, a 5xx, a dropped connection or a crash between send and commit -
// makes the provider look the correlation ID up first, so a record that was
// created but never recorded is found instead of duplicated.
//
// Recording the attempt also applies the daily cap of the governance rule
// that made the assignment (store.DB.MarkTicketAttempt): a ticket beyond it
// is not sent, and CreateTicket returns a *DeferredError saying until when.
func (s *Service) CreateTicket(ctx context.Context, assignmentID int64) error {
	t, err := s.db.FindTicketByAssignment(ctx, assignmentID)
	if err != nil {
		return err
	}
	if t.Status == steward.TicketCreated {
		return nil // a duplicate job, or a retry after the commit
	}
	a, members, err := s.sender(ctx, t)
	if err != nil {
		return err
	}
	if a.State != steward.AssignmentActive {
		return s.fail(ctx, t, steward.TicketFailed, fmt.Sprintf("assignment %s before its ticket was created", a.State))
	}
	provider, in, err := s.Provider(ctx, t.IntegrationID)
	if err != nil {
		return err
	}
	attempt, err := s.db.MarkTicketAttempt(ctx, assignmentID)
	if err != nil {
		return err
	}
	if !attempt.DeferredUntil.IsZero() {
		if attempt.NewlyDeferred {
			s.metrics.tickets.WithLabelValues(string(t.Type), string(steward.TicketDeferred)).Inc()
			s.logger.InfoContext(ctx, "ticket deferred: its rule's daily cap is reached", "assignment_id", assignmentID,
				"rule_id", a.RuleID, "until", attempt.DeferredUntil)
		}
		return &DeferredError{AssignmentID: assignmentID, Until: attempt.DeferredUntil}
	}
	if t.Status == steward.TicketDeferred {
		// Its day has come. The owner push and resolve jobs leave deferred
		// tickets alone, so read the assignment again now that the ticket
		// is no longer deferred: a new owner goes with it, an ended
		// assignment sends nothing.
		if a, members, err = s.sender(ctx, t); err != nil {
			return err
		}
		if a.State != steward.AssignmentActive {
			return s.fail(ctx, t, steward.TicketFailed, fmt.Sprintf("assignment %s before its ticket was created", a.State))
		}
	}
	iu, ok := in.Priority[a.Severity]
	if !ok {
		iu = steward.DefaultPriority()[a.Severity]
	}
	start := time.Now()
	remote, err := provider.CreateTicket(ctx, itsm.CreateRequest{
		Type:               t.Type,
		Table:              t.Table,
		CorrelationID:      t.CorrelationID,
		CorrelationDisplay: "steward",
		ShortDescription:   t.ShortDescription,
		Description:        t.Description + groupList(members),
		AssignedToEmail:    a.Owner,
		CallerEmail:        t.CallerEmail,
		Impact:             iu.Impact,
		Urgency:            iu.Urgency,
		Fields:             in.TicketTypes[t.Type].Fields,
		FirstAttempt:       attempt.Attempts == 1,
	})
	s.metrics.createDuration.WithLabelValues(string(t.Type)).Observe(time.Since(start).Seconds())
	if err != nil {
		status := steward.TicketRetrying
		if !itsm.IsRetryable(err) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			status = steward.TicketFailed
		}
		if ferr := s.fail(ctx, t, status, steward.ErrorMessage(err)); ferr != nil && status == steward.TicketRetrying {
			return errors.Join(err, ferr)
		}
		return err
	}
	listed := make([]int64, len(members))
	for i, m := range members {
		listed[i] = m.ID
	}
	if _, err := s.db.RecordGroupTicketCreated(ctx, assignmentID, fromITSM(remote), listed); err != nil {
		// The record exists in the ITSM; the retry finds it by correlation ID.
		return fmt.Errorf("record created ticket %s: %w", remote.Number, err)
	}
	s.metrics.tickets.WithLabelValues(string(t.Type), "created").Inc()
	s.logger.InfoContext(ctx, "ticket created", "assignment_id", assignmentID, "number", remote.Number, "table", remote.Table)
	return nil
}

// sender returns the assignment ticket t is sent for and, for a group
// ticket, the active members its record lists. A group ticket is sent
// while any member is active, with the owner of the first active one, so
// its leader's fix does not stop it.
func (s *Service) sender(ctx context.Context, t *steward.Ticket) (*steward.Assignment, []*steward.Assignment, error) {
	a, err := s.db.FindAssignmentByID(ctx, t.AssignmentID)
	if err != nil || t.GroupID == 0 {
		return a, nil, err
	}
	all, err := s.db.GroupMembers(ctx, t.GroupID)
	if err != nil {
		return nil, nil, err
	}
	var active []*steward.Assignment
	for _, m := range all {
		if m.State == steward.AssignmentActive {
			active = append(active, m)
		}
	}
	if len(active) > 0 {
		a.State, a.Owner = steward.AssignmentActive, active[0].Owner
	}
	return a, active, nil
}

// groupList is the part of a group ticket's description that lists its
// members' resources; "" for a ticket of its own.
func groupList(members []*steward.Assignment) string {
	if len(members) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n\nAffected resources (%d):", len(members))
	for _, m := range members {
		fmt.Fprintf(&b, "\n- %s", m.ResourceID)
	}
	return b.String()
}

// DeferredError is CreateTicket's answer for a ticket that waits for a day
// its rule's daily cap has room on; the worker snoozes the job until then.
type DeferredError struct {
	AssignmentID int64
	Until        time.Time
}

func (e *DeferredError) Error() string {
	return fmt.Sprintf("the ticket of assignment %d is deferred until %s by its rule's daily cap", e.AssignmentID, e.Until.Format(time.RFC3339))
}

func (s *Service) fail(ctx context.Context, t *steward.Ticket, status steward.TicketStatus, reason string) error {
	s.metrics.tickets.WithLabelValues(string(t.Type), string(status)).Inc()
	if status == steward.TicketFailed {
		s.logger.WarnContext(ctx, "ticket creation failed", "assignment_id", t.AssignmentID, "reason", reason)
	}
	return s.db.RecordTicketFailure(ctx, t.AssignmentID, status, reason)
}

func fromITSM(r *itsm.Ticket) *steward.Ticket {
	t := &steward.Ticket{
		Table:         r.Table,
		SysID:         r.SysID,
		Number:        r.Number,
		Link:          r.Link,
		RawState:      r.RawState,
		StateLabel:    r.StateLabel,
		State:         r.State,
		AssigneeEmail: r.AssignedToEmail,
		ModCount:      r.ModCount,
	}
	if !r.UpdatedAt.IsZero() {
		u := r.UpdatedAt
		t.RemoteUpdatedAt = &u
	}
	return t
}

// CreateTicketWorker runs ticket_create jobs.
type CreateTicketWorker struct {
	river.WorkerDefaults[jobs.CreateTicketArgs]
	svc *Service
}

// NewCreateTicketWorker returns the worker.
func NewCreateTicketWorker(svc *Service) *CreateTicketWorker { return &CreateTicketWorker{svc: svc} }

// Timeout bounds one try; the client's own retries happen inside it.
func (w *CreateTicketWorker) Timeout(*river.Job[jobs.CreateTicketArgs]) time.Duration {
	return 5 * time.Minute
}

// Work maps the outcome onto River: throttled tries are snoozed (they do
// not use up attempts), and so are tickets a daily cap deferred, until
// their day; refused ones are cancelled (a retry cannot help; the
// user can retry after fixing the cause), others retried with backoff.
func (w *CreateTicketWorker) Work(ctx context.Context, job *river.Job[jobs.CreateTicketArgs]) error {
	err := w.svc.CreateTicket(ctx, job.Args.AssignmentID)
	if err == nil {
		return nil
	}
	if d, ok := errors.AsType[*DeferredError](err); ok {
		// Measured on the store's clock, which decided the day.
		return river.JobSnooze(max(d.Until.Sub(w.svc.db.Now()), 0))
	}
	if steward.ErrorCode(err) == steward.CodeNotFound && !itsm.IsKind(err, itsm.KindNotFound) {
		return river.JobCancel(err) // the assignment or ticket row is gone
	}
	ierr, isITSM := errors.AsType[*itsm.Error](err)
	switch {
	case isITSM && ierr.Retryable && ierr.RetryAfter > 0:
		return river.JobSnooze(ierr.RetryAfter)
	case isITSM && !ierr.Retryable:
		return river.JobCancel(err)
	}
	return err
}

package ticketsync

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/itsm"
	"github.com/stewardhq/steward/internal/jobs"
	"github.com/stewardhq/steward/internal/store"
)

// createTicket creates the ITSM record of one assignment, exactly once, for
// the ticket_create job w runs.
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
// is not sent, and createTicket returns a *DeferredError saying until when.
//
// The attempt and the result are written through the worker's group commit
// (a store.Batcher), each committed before createTicket goes on: the
// attempt is durable before the request is sent, and the result before the
// job returns (River then records the job completed, in batches of its
// own). A crash between the two finds the ticket created and sends nothing.
func (s *Service) createTicket(ctx context.Context, w *CreateTicketWorker, assignmentID int64) error {
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
	attempt, err := w.markAttempt(ctx, assignmentID)
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
	if err := w.recordCreated(ctx, assignmentID, fromITSM(remote), listed); err != nil {
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

// CreateTicketWorker runs ticket_create jobs. The small writes (each try's
// attempt, each ticket's result) of all the jobs running at once share
// transactions: one group commit per worker, which Close stops.
type CreateTicketWorker struct {
	river.WorkerDefaults[jobs.CreateTicketArgs]
	svc    *Service
	writes *store.Batcher
	m      *writeMetrics

	// lastTx is the transaction the previous write ran in; only the
	// batcher's one loop reads or sets it (see count).
	lastTx *store.Tx
}

// createWriteBatch bounds the writes one transaction of the group commit
// holds; more than the ticket queue's workers, so each batch takes every
// write waiting.
const createWriteBatch = 100

// NewCreateTicketWorker returns the worker and starts its group commit. reg
// receives its metrics; nil registers none.
func NewCreateTicketWorker(svc *Service, reg prometheus.Registerer) *CreateTicketWorker {
	return &CreateTicketWorker{svc: svc, writes: svc.db.NewBatcher(createWriteBatch), m: newWriteMetrics(reg)}
}

// Close stops the group commit once River no longer runs the worker's
// jobs; a job still running then fails its write and is retried.
func (w *CreateTicketWorker) Close() { w.writes.Close() }

// markAttempt counts a try in the next group commit, or for a first send
// that takes a place of a rule's daily cap in a transaction of its own
// (store.ErrAttemptTakesCapPlace: the rule's row lock must not be held by a
// transaction other tickets' writes share).
func (w *CreateTicketWorker) markAttempt(ctx context.Context, assignmentID int64) (store.TicketAttempt, error) {
	var out store.TicketAttempt
	err := w.writes.Do(ctx, func(tx *store.Tx) error {
		w.count(tx, "attempt")
		var err error
		// The batch's statements must not be cut off by one caller's
		// context (pgx closes the connection on a cancelled query); Do
		// has checked ctx before running this.
		out, err = tx.MarkTicketAttempt(context.WithoutCancel(ctx), assignmentID)
		return err
	})
	if errors.Is(err, store.ErrAttemptTakesCapPlace) {
		return w.svc.db.MarkTicketAttempt(ctx, assignmentID)
	}
	return out, err
}

// recordCreated records the ticket's record in the next group commit. It
// does not complete the job in that transaction (river.JobCompleteTx):
// River's completer writes every job's completion anyway, batched, and on
// SQLite a completion costs more CPU than the result itself, so doing it
// twice cost throughput (docs/benchmarks.md, "Ticket creation"). A job
// re-run after a crash finds its ticket created and returns at once.
func (w *CreateTicketWorker) recordCreated(ctx context.Context, assignmentID int64, remote *steward.Ticket, listed []int64) error {
	return w.writes.Do(ctx, func(tx *store.Tx) error {
		w.count(tx, "result")
		_, err := tx.RecordGroupTicketCreated(context.WithoutCancel(ctx), assignmentID, remote, listed)
		return err
	})
}

// count counts a write and, when it runs in another transaction than the
// previous one, that transaction. It runs inside the batcher's loop, one
// write after the other; keeping the last transaction referenced keeps its
// address from being reused by the next.
func (w *CreateTicketWorker) count(tx *store.Tx, write string) {
	w.m.writes.WithLabelValues(write).Inc()
	if tx != w.lastTx {
		w.lastTx = tx
		w.m.transactions.Inc()
	}
}

type writeMetrics struct {
	writes       *prometheus.CounterVec
	transactions prometheus.Counter
}

func newWriteMetrics(reg prometheus.Registerer) *writeMetrics {
	m := &writeMetrics{
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "steward_ticket_writes_total",
			Help: "Writes of ticket creation tries by kind: attempt (counted before a send), result (the created record).",
		}, []string{"write"}),
		transactions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "steward_ticket_write_transactions_total",
			Help: "Transactions the ticket creation writes were group-committed in; writes divided by this is the mean batch.",
		}),
	}
	// Both kinds show from the start, at 0.
	m.writes.WithLabelValues("attempt")
	m.writes.WithLabelValues("result")
	if reg != nil {
		reg.MustRegister(m.writes, m.transactions)
	}
	return m
}

// Timeout bounds one try; the client's own retries happen inside it.
func (w *CreateTicketWorker) Timeout(*river.Job[jobs.CreateTicketArgs]) time.Duration {
	return 5 * time.Minute
}

// Work maps the outcome onto River: throttled tries are snoozed (they do
// not use up attempts), and so are tickets a daily cap deferred, until
// their day; refused ones are cancelled (a retry cannot help; the
// user can retry after fixing the cause), others retried with backoff.
func (w *CreateTicketWorker) Work(ctx context.Context, job *river.Job[jobs.CreateTicketArgs]) error {
	err := w.svc.createTicket(ctx, w, job.Args.AssignmentID)
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

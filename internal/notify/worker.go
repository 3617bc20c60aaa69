package notify

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/riverqueue/river"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/jobs"
	"github.com/stewardhq/steward/internal/store"
)

// ScheduleInterval is how often the notify_schedule job checks whether a
// digest moment has passed: digests go out within a minute of it.
const ScheduleInterval = time.Minute

// PeriodicJobs is the notify_schedule tick.
func PeriodicJobs() []*river.PeriodicJob {
	return []*river.PeriodicJob{river.NewPeriodicJob(river.PeriodicInterval(ScheduleInterval),
		func() (river.JobArgs, *river.InsertOpts) { return jobs.NotifyScheduleArgs{}, nil },
		&river.PeriodicJobOpts{RunOnStart: true})}
}

// AddWorkers registers the notification workers.
func AddWorkers(workers *river.Workers, s *Service) {
	river.AddWorker(workers, &scheduleWorker{s: s})
	river.AddWorker(workers, &sendWorker{s: s})
}

type scheduleWorker struct {
	river.WorkerDefaults[jobs.NotifyScheduleArgs]
	s *Service
}

func (w *scheduleWorker) Work(ctx context.Context, _ *river.Job[jobs.NotifyScheduleArgs]) error {
	_, err := w.s.Plan(ctx, w.s.cfg.Now())
	return err
}

type sendWorker struct {
	river.WorkerDefaults[jobs.NotifySendArgs]
	s *Service
}

// NextRetry doubles the configured backoff per attempt, at most an hour.
func (w *sendWorker) NextRetry(job *river.Job[jobs.NotifySendArgs]) time.Time {
	return time.Now().Add(w.s.backoff(job.Attempt))
}

func (s *Service) backoff(attempt int) time.Duration {
	d := s.cfg.RetryBackoff
	for i := 1; i < attempt && d < time.Hour; i++ {
		d *= 2
	}
	return min(d, time.Hour)
}

func (w *sendWorker) Work(ctx context.Context, job *river.Job[jobs.NotifySendArgs]) error {
	last := job.Attempt >= job.MaxAttempts
	return w.s.Send(ctx, job.Args.NotificationID, job.Attempt, last)
}

// Send sends one planned notification, exactly once as far as Steward can
// know: the row is moved to sending, in its own committed write, only
// after the SMTP server has accepted the sender, the recipient and the
// whole content, right before the final "." that makes the server
// responsible for it; only the attempt that made that move may take the
// step. A row found in sending was handed over by an attempt that never
// learned the answer (a crash, a lost connection): it becomes unknown and
// is not sent again unless a person resends it. attempt is the job's try
// (for the retry time shown); last says no try follows.
func (s *Service) Send(ctx context.Context, id int64, attempt int, last bool) error {
	if !s.Enabled() {
		return river.JobCancel(errDisabled)
	}
	n, err := s.db.FindNotification(ctx, id)
	if err != nil {
		if steward.ErrorCode(err) == steward.CodeNotFound {
			return river.JobCancel(err)
		}
		return err
	}
	switch n.State {
	case steward.NotificationSent, steward.NotificationFailed, steward.NotificationSkipped, steward.NotificationUnknown:
		return nil
	case steward.NotificationSending:
		why := "an earlier attempt handed the message to the SMTP server but did not learn its answer (Steward stopped or the connection dropped); it may have been delivered, so it is not sent again unless a person resends it"
		if _, err := s.db.TransitionNotification(ctx, id, []steward.NotificationState{steward.NotificationSending},
			store.NotificationChange{To: steward.NotificationUnknown, LastError: &why}); err != nil {
			return err
		}
		s.sent.WithLabelValues(string(n.Kind), "unknown").Inc()
		s.logger.WarnContext(ctx, "notification outcome unknown; not sent again", "notification", id, "recipient", n.Recipient, "kind", n.Kind)
		return nil
	}
	waiting := []steward.NotificationState{steward.NotificationPending, steward.NotificationRetrying}
	msg, items, err := s.render(ctx, n.Kind, n.Recipient, n.Subjects, n.Period)
	if err != nil {
		return err
	}
	if items == 0 {
		why := "nothing left to tell when it was due"
		if _, err := s.db.TransitionNotification(ctx, id, waiting, store.NotificationChange{To: steward.NotificationSkipped, LastError: &why}); err != nil {
			return err
		}
		s.sent.WithLabelValues(string(n.Kind), "skipped").Inc()
		return nil
	}
	msg.From = s.cfg.SMTP.From
	msg.To = []string{n.Recipient}
	msg.MessageID = s.messageID(fmt.Sprintf("%d.%s.%s", n.ID, n.Kind, n.Period))
	committed := false
	commit := func(ctx context.Context) error {
		ok, err := s.db.TransitionNotification(ctx, id, waiting, store.NotificationChange{To: steward.NotificationSending,
			Attempt: true, MessageID: &msg.MessageID})
		if err != nil {
			return err
		}
		if !ok {
			return errTaken
		}
		committed = true
		return nil
	}
	reply, err := s.mailer.Send(ctx, msg, commit)
	// The outcome is written even when ctx ended meanwhile (a shutdown):
	// a row left in sending would turn unknown at the next try.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	from := waiting
	if committed {
		from = []steward.NotificationState{steward.NotificationSending}
	}
	if err == nil {
		now := s.cfg.Now()
		text := reply.String()
		// Accepted is accepted: even if another attempt took the row for
		// unknown meanwhile (a job rescued from a process thought dead).
		if committed {
			from = []steward.NotificationState{steward.NotificationSending, steward.NotificationUnknown}
		}
		if _, err := s.db.TransitionNotification(wctx, id, from, store.NotificationChange{To: steward.NotificationSent, Reply: &text, SentAt: &now}); err != nil {
			return fmt.Errorf("record notification %d sent: %w", id, err)
		}
		s.sent.WithLabelValues(string(n.Kind), "sent").Inc()
		s.logger.InfoContext(ctx, "notification sent", "notification", id, "recipient", n.Recipient, "kind", n.Kind, "reply", text)
		return nil
	}
	if errors.Is(err, errTaken) {
		return nil
	}
	why := err.Error()
	change := store.NotificationChange{LastError: &why, Attempt: !committed}
	var se *SendError
	if errors.As(err, &se) && se.Reply.Code != 0 {
		t := se.Reply.String()
		change.Reply = &t
	}
	switch OutcomeOf(err) {
	case OutcomeUnknown:
		change.To = steward.NotificationUnknown
		s.logger.WarnContext(ctx, "notification outcome unknown; not sent again", "notification", id, "recipient", n.Recipient, "err", err)
	case OutcomePermanent:
		change.To = steward.NotificationFailed
		s.logger.WarnContext(ctx, "notification refused", "notification", id, "recipient", n.Recipient, "err", err)
	default:
		change.To = steward.NotificationRetrying
		if !last {
			next := time.Now().Add(s.backoff(attempt)).UTC()
			change.NextAttemptAt = &next
		}
	}
	if _, werr := s.db.TransitionNotification(wctx, id, from, change); werr != nil {
		return errors.Join(err, fmt.Errorf("record notification %d %s: %w", id, change.To, werr))
	}
	s.sent.WithLabelValues(string(n.Kind), string(change.To)).Inc()
	if change.To == steward.NotificationRetrying {
		return err // River retries after NextRetry
	}
	return nil
}

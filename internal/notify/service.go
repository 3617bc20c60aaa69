package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/jobs"
	"github.com/stewardhq/steward/internal/store"
)

// ManagerFinder finds an owner's manager in the ITSM (ticketsync's
// Service: ServiceNow's sys_user.manager).
type ManagerFinder interface {
	// ManagerOf returns owner's manager's e-mail address, or "" with what
	// was tried in detail.
	ManagerOf(ctx context.Context, owner string) (manager, detail string, err error)
}

// Config is the notification setup.
type Config struct {
	// SMTP is the server mail goes through; nil turns notifications off
	// (nothing is planned; preview still works).
	SMTP *SMTPConfig
	// Schedule is when digests go out.
	Schedule Schedule
	// PublicURL is Steward's base URL for links in messages.
	PublicURL string
	// RetryBackoff is the wait before the second try of a refused
	// message, doubled for each try after (at most an hour); 0 means 30 s.
	RetryBackoff time.Duration
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

// Deps are the parts notifications use.
type Deps struct {
	DB    *store.DB
	Queue *jobs.Queue
	// Mailer sends; nil builds an SMTPMailer from Config.SMTP.
	Mailer Mailer
	// Managers finds managers in ServiceNow; nil uses the mapping alone.
	Managers ManagerFinder
	Logger   *slog.Logger
	// Registry receives the metrics; nil registers none.
	Registry prometheus.Registerer
}

// Service plans and sends notifications. It is safe for concurrent use.
type Service struct {
	cfg      Config
	db       *store.DB
	queue    *jobs.Queue
	mailer   Mailer
	managers ManagerFinder
	logger   *slog.Logger
	sent     *prometheus.CounterVec
	// publicURL is read per message: the server may only know it once
	// its listener is bound.
	publicURL func() string
}

// New returns the notification service.
func New(cfg Config, deps Deps) *Service {
	s := &Service{cfg: cfg, db: deps.DB, queue: deps.Queue, mailer: deps.Mailer, managers: deps.Managers, logger: deps.Logger}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.mailer == nil && cfg.SMTP != nil {
		s.mailer = NewSMTPMailer(*cfg.SMTP)
	}
	if s.cfg.Now == nil {
		s.cfg.Now = time.Now
	}
	if s.cfg.RetryBackoff <= 0 {
		s.cfg.RetryBackoff = 30 * time.Second
	}
	if s.cfg.Schedule.Location == nil {
		s.cfg.Schedule.Location = time.UTC
	}
	s.publicURL = func() string { return s.cfg.PublicURL }
	s.sent = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "steward_notifications_total",
		Help: "E-mail notifications by kind and result (sent, retrying, failed, unknown, skipped).",
	}, []string{"kind", "result"})
	if deps.Registry != nil {
		deps.Registry.MustRegister(s.sent)
	}
	return s
}

// SetPublicURL sets the base URL for links when it is only known after
// start (a listener on port 0).
func (s *Service) SetPublicURL(u string) { s.publicURL = func() string { return u } }

// Enabled reports whether an SMTP server is configured.
func (s *Service) Enabled() bool { return s.mailer != nil && s.cfg.SMTP != nil }

// errDisabled answers requests that need an SMTP server when none is set.
var errDisabled = steward.Errorf(steward.CodeUnavailable, "e-mail is not configured: set STEWARD_SMTP_HOST and STEWARD_SMTP_FROM (docs/notifications.md)")

// Plan plans the notifications of the latest digest moment at or before
// now, once: the first call (in any process) after the moment claims its
// period and, in the same transaction, adds one digest per owner with open
// work and one escalation per manager of owners with overdue work to the
// sent-log, each with its send job. Later calls for the period plan
// nothing; a moment before notifications were first enabled on the
// database is never planned, a moment missed while Steward was stopped is
// planned late. It returns how many e-mails it planned.
func (s *Service) Plan(ctx context.Context, now time.Time) (int, error) {
	if !s.Enabled() {
		return 0, nil
	}
	moment := s.cfg.Schedule.Last(now)
	since, err := s.db.NotificationsSince(ctx, now)
	if err != nil || moment.Before(since) {
		return 0, err
	}
	period := s.cfg.Schedule.Period(moment)
	planned, err := s.db.NotificationPeriodPlanned(ctx, period)
	if err != nil || planned {
		return 0, err
	}
	owners, err := s.db.NotificationOwners(ctx)
	if err != nil {
		return 0, err
	}
	byManager, err := s.reportsByManager(ctx, now, true)
	if err != nil {
		return 0, err
	}
	var plans []store.NotificationPlan
	for _, o := range owners {
		plans = append(plans, store.NotificationPlan{Recipient: o, Kind: steward.NotificationDigest, Period: period})
	}
	for _, m := range slices.Sorted(maps.Keys(byManager)) {
		plans = append(plans, store.NotificationPlan{Recipient: byManager[m].manager, Kind: steward.NotificationEscalation,
			Period: period, Subjects: byManager[m].reports})
	}
	n := 0
	err = s.db.WithTx(ctx, func(tx *store.Tx) error {
		claimed, err := tx.ClaimNotificationPeriod(ctx, period)
		if err != nil || !claimed {
			return err
		}
		for _, p := range plans {
			id, created, err := tx.PlanNotification(ctx, p)
			if err != nil {
				return err
			}
			if !created {
				continue
			}
			if err := s.queue.InsertTx(ctx, tx.SQL(), jobs.NotifySendArgs{NotificationID: id}); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("plan the notifications of %s: %w", period, err)
	}
	if n > 0 {
		s.logger.InfoContext(ctx, "notifications planned", "period", period, "count", n)
	}
	return n, nil
}

type reports struct {
	manager string
	reports []string
}

// reportsByManager finds the manager of every owner with overdue work
// (ServiceNow first, then the mapping), records where each was found when
// record is set (planning; a preview only looks), and groups the owners by
// manager (lower-cased address).
func (s *Service) reportsByManager(ctx context.Context, now time.Time, record bool) (map[string]*reports, error) {
	overdue, err := s.db.OverdueOwners(ctx, now)
	if err != nil {
		return nil, err
	}
	out := map[string]*reports{}
	var found []steward.OwnerManager
	for _, o := range overdue {
		m := s.managerOf(ctx, o)
		found = append(found, m)
		if m.Manager == "" {
			continue
		}
		key := strings.ToLower(m.Manager)
		if out[key] == nil {
			out[key] = &reports{manager: m.Manager}
		}
		out[key].reports = append(out[key].reports, o)
	}
	if !record {
		return out, nil
	}
	if err := s.db.RecordOwnerManagers(ctx, found); err != nil {
		return nil, err
	}
	return out, nil
}

// managerOf finds one owner's manager. A failure to ask is recorded as no
// manager found, with the reason: the escalations of everyone else go on.
func (s *Service) managerOf(ctx context.Context, owner string) steward.OwnerManager {
	m := steward.OwnerManager{Owner: owner, Source: steward.ManagerUnknown, ResolvedAt: s.cfg.Now()}
	var tried []string
	if s.managers != nil {
		mgr, detail, err := s.managers.ManagerOf(ctx, owner)
		switch {
		case err != nil:
			tried = append(tried, "ServiceNow: "+steward.ErrorMessage(err))
		case mgr != "":
			m.Manager, m.Source = mgr, steward.ManagerFromServiceNow
			return m
		case detail != "":
			tried = append(tried, "ServiceNow: "+detail)
		}
	}
	mapped, err := s.db.ManagerMappingOf(ctx, owner)
	switch {
	case err != nil:
		tried = append(tried, "mapping: "+steward.ErrorMessage(err))
	case mapped != "":
		m.Manager, m.Source = mapped, steward.ManagerFromMapping
		return m
	default:
		tried = append(tried, "no manager mapping")
	}
	m.Detail = strings.Join(tried, "; ")
	return m
}

// render builds a notification's message from the assignments as they are
// now; items is how many it lists (0: nothing to tell).
func (s *Service) render(ctx context.Context, kind steward.NotificationKind, recipient string, subjects []string, period string) (Message, int, error) {
	now := s.cfg.Now()
	switch kind {
	case steward.NotificationDigest:
		items, err := s.db.NotificationItems(ctx, []string{recipient}, false, now)
		if err != nil || len(items) == 0 {
			return Message{}, 0, err
		}
		msg, err := RenderDigest(Digest{Owner: recipient, Items: items, Now: now, Location: s.cfg.Schedule.Location,
			PublicURL: strings.TrimRight(s.publicURL(), "/"), Period: period})
		return msg, len(items), err
	case steward.NotificationEscalation:
		items, err := s.db.NotificationItems(ctx, subjects, true, now)
		if err != nil || len(items) == 0 {
			return Message{}, 0, err
		}
		msg, err := RenderEscalation(Escalation{Manager: recipient, Items: items, Now: now, Location: s.cfg.Schedule.Location,
			PublicURL: strings.TrimRight(s.publicURL(), "/"), Period: period})
		return msg, len(items), err
	}
	return Message{}, 0, steward.Errorf(steward.CodeInvalid, "unknown notification kind %q (want digest or escalation)", kind)
}

// Preview renders what recipient would receive now: an owner's digest
// (kind digest) or a manager's escalation of their reports' overdue work
// (kind escalation; the reports are found as the next escalation would
// find them). Items 0 means nothing would be sent.
func (s *Service) Preview(ctx context.Context, kind steward.NotificationKind, recipient string) (*steward.MailPreview, error) {
	field := "owner"
	if kind == steward.NotificationEscalation {
		field = "manager"
	}
	if err := steward.ValidateEmail(field, recipient); err != nil {
		return nil, err
	}
	recipient = strings.TrimSpace(recipient)
	var subjects []string
	if kind == steward.NotificationEscalation {
		byManager, err := s.reportsByManager(ctx, s.cfg.Now(), false)
		if err != nil {
			return nil, err
		}
		if r := byManager[strings.ToLower(recipient)]; r != nil {
			subjects = r.reports
		}
	}
	period := s.cfg.Schedule.Period(s.cfg.Schedule.Next(s.cfg.Now()))
	msg, items, err := s.render(ctx, kind, recipient, subjects, period)
	if err != nil {
		return nil, err
	}
	p := &steward.MailPreview{To: []string{recipient}, Kind: kind, Items: items, Subject: msg.Subject, Text: msg.Text, HTML: msg.HTML}
	return p, nil
}

// SendTest sends a test message to one address and returns the server's
// answer.
func (s *Service) SendTest(ctx context.Context, to string) (*steward.MailTestResult, error) {
	if err := steward.ValidateEmail("to", to); err != nil {
		return nil, err
	}
	if !s.Enabled() {
		return nil, errDisabled
	}
	msg := RenderTest(strings.TrimSpace(to), s.publicURL(), s.cfg.Now())
	msg.From = s.cfg.SMTP.From
	msg.MessageID = s.messageID(fmt.Sprintf("test.%d", s.cfg.Now().UnixNano()))
	reply, err := s.mailer.Send(ctx, msg, nil)
	if err != nil {
		// A refusal for good (an unknown mailbox, a refused login) is the
		// settings' or the address's fault, not Steward being unavailable.
		code := steward.CodeUnavailable
		if OutcomeOf(err) == OutcomePermanent {
			code = steward.CodeInvalid
		}
		return nil, steward.WrapError(code, err, "the test message to %s was not accepted: %s", to, err.Error())
	}
	return &steward.MailTestResult{To: msg.To[0], Code: reply.Code, Reply: reply.String(), MessageID: msg.MessageID}, nil
}

// messageID is a Message-ID in the sender's domain.
func (s *Service) messageID(local string) string {
	domain := "steward.invalid"
	if a, err := mail.ParseAddress(s.cfg.SMTP.From); err == nil {
		if _, d, ok := strings.Cut(a.Address, "@"); ok {
			domain = d
		}
	}
	return "steward." + local + "@" + domain
}

// Resend queues a failed, unknown or retrying notification to be sent
// again, because a person decided so (an unknown one may then arrive
// twice). It is audited. A notification whose send job is still waiting,
// running or retrying is refused with CodeConflict: a retrying one is
// resent only after River has given up on it.
func (s *Service) Resend(ctx context.Context, id int64, actor string) (*steward.Notification, error) {
	if !s.Enabled() {
		return nil, errDisabled
	}
	// The row as the resend left it: its job may send it before a read
	// after the commit would.
	var resent *steward.Notification
	err := s.db.WithTx(ctx, func(tx *store.Tx) error {
		ok, err := tx.TransitionNotification(ctx, id, []steward.NotificationState{steward.NotificationFailed, steward.NotificationUnknown,
			steward.NotificationRetrying}, store.NotificationChange{To: steward.NotificationPending})
		if err != nil {
			return err
		}
		if !ok {
			n, err := s.db.FindNotification(ctx, id)
			if err != nil {
				return err
			}
			return steward.Errorf(steward.CodeConflict, "notification %d is %s: only a failed, unknown or retrying one can be sent again", id, n.State)
		}
		if err := tx.InsertAudit(ctx, &steward.AuditEvent{At: s.cfg.Now(), Actor: actor, Action: "notification.resend",
			Details: map[string]any{"notification_id": id}}); err != nil {
			return err
		}
		// The notification's send job is unique while it waits, runs or
		// retries: one attempt at a time is what lets a row found in
		// sending mean "outcome unknown". If it is still there (retries
		// left, or the attempt that just failed not yet recorded as done
		// by River), the resend is refused and nothing changes.
		queued, err := s.queue.InsertUniqueTx(ctx, tx.SQL(), jobs.NotifySendArgs{NotificationID: id})
		if err != nil {
			return err
		}
		if !queued {
			return steward.Errorf(steward.CodeConflict, "notification %d still has a send attempt waiting or finishing (a retrying one is tried again by itself at its next attempt time); resend it once that attempt has ended", id)
		}
		resent, err = tx.FindNotification(ctx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return resent, nil
}

// Status describes the setup and what needs attention.
func (s *Service) Status(ctx context.Context) (*steward.NotificationStatus, error) {
	st := &steward.NotificationStatus{Enabled: s.Enabled(), Schedule: s.cfg.Schedule.String(), NextDigest: s.cfg.Schedule.Next(s.cfg.Now())}
	if c := s.cfg.SMTP; c != nil {
		st.SMTP = fmt.Sprintf("%s (%s) from %s", c.Address(), c.TLS, c.From)
	}
	var err error
	if st.Counts, err = s.db.CountNotifications(ctx); err != nil {
		return nil, err
	}
	attention, _, err := s.db.FindNotifications(ctx, store.NotificationFilter{Limit: 50,
		States: []steward.NotificationState{steward.NotificationRetrying, steward.NotificationFailed, steward.NotificationUnknown}})
	if err != nil {
		return nil, err
	}
	st.Attention = make([]steward.Notification, 0, len(attention))
	for _, n := range attention {
		st.Attention = append(st.Attention, *n)
	}
	if st.OwnersWithoutManager, err = s.db.FindOwnerManagers(ctx, true); err != nil {
		return nil, err
	}
	return st, nil
}

// errTaken: another attempt moved the row first; this one sends nothing.
var errTaken = errors.New("another attempt is sending this notification")

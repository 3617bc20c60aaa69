package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/stewardhq/steward"
)

// This file holds the e-mail notifications' data (docs/notifications.md):
// who has open work, the sent-log that makes each e-mail exactly once, and
// owners' managers.

// NotificationItem is one open assignment as a digest or an escalation
// lists it.
type NotificationItem struct {
	AssignmentID       int64
	Owner              string
	RecommendationKey  string
	RecommendationName string
	Severity           steward.Severity
	ResourceID         string
	DueDate            time.Time
	Type               steward.AssignmentType
	// TicketStatus is the ticket's creation status ("" for a manual
	// assignment); the other Ticket* fields are empty until it is created.
	TicketStatus steward.TicketStatus
	TicketNumber string
	TicketState  string // the ITSM's state label, e.g. "In Progress"
	TicketLink   string
}

// notified keeps the active assignments g that e-mails may tell of, given
// the rule ru that made them (LEFT JOINed): the assignment's own opt-out
// and that of its rule (as it is now) both silence one. optOut is the
// column: owner_email_opt_out or manager_email_opt_out.
func notified(optOut string) string {
	return fmt.Sprintf(`g.state = 'active' AND g.%[1]s = 0 AND COALESCE(ru.%[1]s, 0) = 0`, optOut)
}

// NotificationOwners returns the owners (as written on their newest
// assignment, one per address in any letter case) with at least one
// active assignment whose owner e-mails are not opted out, sorted.
func (db *DB) NotificationOwners(ctx context.Context) ([]string, error) {
	return db.notificationOwners(ctx, "owner_email_opt_out", time.Time{})
}

// OverdueOwners returns the owners with at least one active assignment due
// before now whose manager e-mails are not opted out, sorted.
func (db *DB) OverdueOwners(ctx context.Context, now time.Time) ([]string, error) {
	return db.notificationOwners(ctx, "manager_email_opt_out", now)
}

func (db *DB) notificationOwners(ctx context.Context, optOut string, dueBefore time.Time) ([]string, error) {
	q := `SELECT g.owner_norm, MAX(g.owner) FROM assignment g LEFT JOIN rule ru ON ru.id = g.rule_id
		WHERE ` + notified(optOut)
	var args []any
	if !dueBefore.IsZero() {
		q += ` AND g.due_date < ?`
		args = append(args, db.timeArg(dueBefore))
	}
	q += ` GROUP BY g.owner_norm ORDER BY g.owner_norm`
	rows, err := db.read.QueryContext(ctx, db.bind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("find owners to notify: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var norm, owner string
		if err := rows.Scan(&norm, &owner); err != nil {
			return nil, fmt.Errorf("find owners to notify: %w", err)
		}
		out = append(out, owner)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find owners to notify: %w", err)
	}
	return out, nil
}

// NotificationItems returns the active assignments of the owners (any
// letter case) that an owner's digest (forManager false: owner opt-outs
// apply) or a manager's escalation (forManager true: manager opt-outs
// apply, and only assignments due before now) lists, by due date. A
// member of a ticket group shows its group's ticket.
func (db *DB) NotificationItems(ctx context.Context, owners []string, forManager bool, now time.Time) ([]NotificationItem, error) {
	if len(owners) == 0 {
		return nil, nil
	}
	optOut := "owner_email_opt_out"
	if forManager {
		optOut = "manager_email_opt_out"
	}
	q := `SELECT g.id, g.owner, r.key, r.display_name, r.severity, res.resource_id, g.due_date, g.type,
		COALESCE(t.status, ''), COALESCE(t.number, ''), COALESCE(t.state_label, ''), COALESCE(t.link, '')
		FROM assignment g
		JOIN assessment a ON a.id = g.assessment_id
		JOIN recommendation r ON r.id = a.recommendation_id
		JOIN resource res ON res.id = a.resource_id
		LEFT JOIN rule ru ON ru.id = g.rule_id
		LEFT JOIN ticket_group tg ON tg.id = g.ticket_group_id
		LEFT JOIN ticket t ON t.assignment_id = COALESCE(tg.leader_assignment_id, g.id)
		WHERE ` + notified(optOut) + ` AND g.owner_norm IN (` + placeholders(len(owners)) + `)`
	var args []any
	for _, o := range owners {
		args = append(args, strings.ToLower(strings.TrimSpace(o)))
	}
	if forManager {
		q += ` AND g.due_date < ?`
		args = append(args, db.timeArg(now))
	}
	q += ` ORDER BY g.due_date, g.id`
	rows, err := db.read.QueryContext(ctx, db.bind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("find assignments to notify of: %w", err)
	}
	defer rows.Close()
	var out []NotificationItem
	for rows.Next() {
		var it NotificationItem
		var due dbTime
		if err := rows.Scan(&it.AssignmentID, &it.Owner, &it.RecommendationKey, &it.RecommendationName, &it.Severity,
			&it.ResourceID, &due, &it.Type, &it.TicketStatus, &it.TicketNumber, &it.TicketState, &it.TicketLink); err != nil {
			return nil, fmt.Errorf("find assignments to notify of: %w", err)
		}
		it.DueDate = due.T
		out = append(out, it)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find assignments to notify of: %w", err)
	}
	return out, nil
}

// NotificationPlan is one e-mail to plan for a period.
type NotificationPlan struct {
	Recipient string
	Kind      steward.NotificationKind
	Period    string
	// Subjects are an escalation's owners.
	Subjects []string
}

// ClaimNotificationPeriod records that period's notifications are being
// planned in tx. It reports false when they already were (by this process
// or another): the caller plans nothing. On PostgreSQL a second process
// claiming at once waits for the first's transaction, then gets false.
func (tx *Tx) ClaimNotificationPeriod(ctx context.Context, period string) (bool, error) {
	res, err := tx.tx.ExecContext(ctx, tx.db.bind(`INSERT INTO notification_period (period, planned_at) VALUES (?, ?)
		ON CONFLICT (period) DO NOTHING`), period, tx.db.timeArg(tx.db.now()))
	if err != nil {
		return false, fmt.Errorf("claim notification period %s: %w", period, mapError(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("claim notification period %s: %w", period, err)
	}
	return n == 1, nil
}

// PlanNotification adds p to the sent-log as pending, unless the log
// already holds that recipient (any letter case), kind and period: then
// created is false and id is the existing row's.
func (tx *Tx) PlanNotification(ctx context.Context, p NotificationPlan) (id int64, created bool, err error) {
	if err := steward.ValidateEmail("recipient", p.Recipient); err != nil {
		return 0, false, err
	}
	subjects, err := json.Marshal(nonNil(p.Subjects))
	if err != nil {
		return 0, false, fmt.Errorf("plan notification: %w", err)
	}
	now := tx.db.timeArg(tx.db.now())
	norm := strings.ToLower(strings.TrimSpace(p.Recipient))
	err = tx.tx.QueryRowContext(ctx, tx.db.bind(`INSERT INTO notification (recipient, recipient_norm, kind, period, state, subjects, created_at, updated_at)
		VALUES (?, ?, ?, ?, 'pending', ?, ?, ?)
		ON CONFLICT (recipient_norm, kind, period) DO NOTHING RETURNING id`),
		strings.TrimSpace(p.Recipient), norm, string(p.Kind), p.Period, string(subjects), now, now).Scan(&id)
	if err == nil {
		return id, true, nil
	}
	if !isNoRows(err) {
		return 0, false, fmt.Errorf("plan %s for %s: %w", p.Kind, p.Recipient, mapError(err))
	}
	err = tx.tx.QueryRowContext(ctx, tx.db.bind(`SELECT id FROM notification WHERE recipient_norm = ? AND kind = ? AND period = ?`),
		norm, string(p.Kind), p.Period).Scan(&id)
	if err != nil {
		return 0, false, fmt.Errorf("plan %s for %s: %w", p.Kind, p.Recipient, mapError(err))
	}
	return id, false, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

const notificationColumns = `id, recipient, kind, period, state, subjects, attempts, last_error, reply, message_id,
	created_at, updated_at, sent_at, next_attempt_at`

func scanNotification(sc interface{ Scan(...any) error }) (*steward.Notification, error) {
	n := new(steward.Notification)
	var subjects string
	var created, updated, sent, next dbTime
	if err := sc.Scan(&n.ID, &n.Recipient, &n.Kind, &n.Period, &n.State, &subjects, &n.Attempts, &n.LastError, &n.Reply,
		&n.MessageID, &created, &updated, &sent, &next); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(subjects), &n.Subjects); err != nil {
		return nil, fmt.Errorf("notification %d subjects: %w", n.ID, err)
	}
	if len(n.Subjects) == 0 {
		n.Subjects = nil
	}
	n.CreatedAt, n.UpdatedAt, n.SentAt, n.NextAttemptAt = created.T, updated.T, sent.ptr(), next.ptr()
	return n, nil
}

// FindNotification returns one sent-log row, or CodeNotFound.
func (db *DB) FindNotification(ctx context.Context, id int64) (*steward.Notification, error) {
	return db.findNotification(ctx, db.read, id)
}

// FindNotification is DB.FindNotification inside tx: the row as tx has
// left it.
func (tx *Tx) FindNotification(ctx context.Context, id int64) (*steward.Notification, error) {
	return tx.db.findNotification(ctx, tx.tx, id)
}

func (db *DB) findNotification(ctx context.Context, q querier, id int64) (*steward.Notification, error) {
	n, err := scanNotification(q.QueryRowContext(ctx, db.bind(`SELECT `+notificationColumns+` FROM notification WHERE id = ?`), id))
	if isNoRows(err) {
		return nil, steward.Errorf(steward.CodeNotFound, "notification %d not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("find notification %d: %w", id, err)
	}
	return n, nil
}

// NotificationFilter selects sent-log rows. Zero fields do not filter.
type NotificationFilter struct {
	States    []steward.NotificationState
	Kind      steward.NotificationKind
	Period    string
	Recipient string // any letter case
	Cursor    string
	Limit     int
}

const cursorNotification = "ntf"

// FindNotifications lists sent-log rows, newest first, a page at a time.
func (db *DB) FindNotifications(ctx context.Context, f NotificationFilter) ([]*steward.Notification, string, error) {
	limit, err := pageLimit(f.Limit)
	if err != nil {
		return nil, "", err
	}
	after, hasAfter, err := decodeCursor[int64](cursorNotification, f.Cursor)
	if err != nil {
		return nil, "", err
	}
	var where []string
	var args []any
	if len(f.States) > 0 {
		for _, s := range f.States {
			if !s.Valid() {
				return nil, "", steward.Errorf(steward.CodeInvalid, "unknown notification state %q (want pending, sending, sent, retrying, failed, unknown or skipped)", s)
			}
			args = append(args, string(s))
		}
		where = append(where, "state IN ("+placeholders(len(f.States))+")")
	}
	if f.Kind != "" {
		if !f.Kind.Valid() {
			return nil, "", steward.Errorf(steward.CodeInvalid, "unknown notification kind %q (want digest or escalation)", f.Kind)
		}
		where = append(where, "kind = ?")
		args = append(args, string(f.Kind))
	}
	if f.Period != "" {
		where = append(where, "period = ?")
		args = append(args, f.Period)
	}
	if f.Recipient != "" {
		where = append(where, "recipient_norm = ?")
		args = append(args, strings.ToLower(strings.TrimSpace(f.Recipient)))
	}
	if hasAfter {
		where = append(where, "id < ?")
		args = append(args, after)
	}
	q := `SELECT ` + notificationColumns + ` FROM notification`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id DESC LIMIT ?"
	args = append(args, limit+1)
	rows, err := db.read.QueryContext(ctx, db.bind(q), args...)
	if err != nil {
		return nil, "", fmt.Errorf("find notifications: %w", err)
	}
	defer rows.Close()
	var out []*steward.Notification
	for rows.Next() {
		n, err := scanNotification(rows)
		if err != nil {
			return nil, "", fmt.Errorf("find notifications: %w", err)
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("find notifications: %w", err)
	}
	if len(out) > limit {
		out = out[:limit]
		return out, encodeCursor(cursorNotification, out[limit-1].ID), nil
	}
	return out, "", nil
}

// CountNotifications counts the sent-log's rows by state.
func (db *DB) CountNotifications(ctx context.Context) (map[steward.NotificationState]int, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT state, COUNT(*) FROM notification GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("count notifications: %w", err)
	}
	defer rows.Close()
	out := map[steward.NotificationState]int{}
	for rows.Next() {
		var s steward.NotificationState
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			return nil, fmt.Errorf("count notifications: %w", err)
		}
		out[s] = n
	}
	return out, rows.Err()
}

// NotificationChange is a state transition of a sent-log row. Only the
// fields set are written; Attempt adds one to attempts.
type NotificationChange struct {
	To            steward.NotificationState
	Attempt       bool
	LastError     *string
	Reply         *string
	MessageID     *string
	SentAt        *time.Time
	NextAttemptAt *time.Time // written as given; nil clears it
}

// TransitionNotification moves a row from one of the states in from to
// ch.To in one conditional statement, and reports whether it did: false
// means the row was not in any of those states (another attempt or
// process moved it first), and nothing was written. This is what keeps a
// message from being sent twice: only the attempt that moves a row to
// sending may hand the message over.
func (db *DB) TransitionNotification(ctx context.Context, id int64, from []steward.NotificationState, ch NotificationChange) (bool, error) {
	return db.transitionNotification(ctx, db.write, id, from, ch)
}

// TransitionNotification is DB.TransitionNotification inside tx (a resend
// queues its job in the same transaction).
func (tx *Tx) TransitionNotification(ctx context.Context, id int64, from []steward.NotificationState, ch NotificationChange) (bool, error) {
	return tx.db.transitionNotification(ctx, tx.tx, id, from, ch)
}

func (db *DB) transitionNotification(ctx context.Context, w querier, id int64, from []steward.NotificationState, ch NotificationChange) (bool, error) {
	if len(from) == 0 || !ch.To.Valid() {
		return false, steward.Errorf(steward.CodeInvalid, "notification transition needs from states and a valid target, not %v → %q", from, ch.To)
	}
	set := []string{"state = ?", "updated_at = ?", "next_attempt_at = ?"}
	args := []any{string(ch.To), db.timeArg(db.now()), db.nullTimeArg(ch.NextAttemptAt)}
	if ch.Attempt {
		set = append(set, "attempts = attempts + 1")
	}
	for _, f := range []struct {
		col string
		v   *string
	}{{"last_error", ch.LastError}, {"reply", ch.Reply}, {"message_id", ch.MessageID}} {
		if f.v != nil {
			set = append(set, f.col+" = ?")
			args = append(args, *f.v)
		}
	}
	if ch.SentAt != nil {
		set = append(set, "sent_at = ?")
		args = append(args, db.timeArg(*ch.SentAt))
	}
	args = append(args, id)
	for _, s := range from {
		args = append(args, string(s))
	}
	q := `UPDATE notification SET ` + strings.Join(set, ", ") + ` WHERE id = ? AND state IN (` + placeholders(len(from)) + `)`
	res, err := w.ExecContext(ctx, db.bind(q), args...)
	if err != nil {
		return false, fmt.Errorf("notification %d to %s: %w", id, ch.To, mapError(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("notification %d to %s: %w", id, ch.To, err)
	}
	return n == 1, nil
}

// PutManagerMapping names owner's manager (replacing an earlier one) and
// audits the change.
func (db *DB) PutManagerMapping(ctx context.Context, owner, manager, actor string) (*steward.ManagerMapping, error) {
	if err := steward.ValidateEmail("owner", owner); err != nil {
		return nil, err
	}
	if err := steward.ValidateEmail("manager", manager); err != nil {
		return nil, err
	}
	owner, manager = strings.TrimSpace(owner), strings.TrimSpace(manager)
	if strings.EqualFold(owner, manager) {
		return nil, steward.AtField("manager", steward.Errorf(steward.CodeInvalid, "an owner cannot be their own manager"))
	}
	m := &steward.ManagerMapping{Owner: owner, Manager: manager, UpdatedAt: db.now(), UpdatedBy: actor}
	err := db.WithTx(ctx, func(tx *Tx) error {
		if _, err := tx.tx.ExecContext(ctx, db.bind(`INSERT INTO manager_mapping (owner_norm, owner, manager, updated_at, updated_by)
			VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (owner_norm) DO UPDATE SET owner = excluded.owner, manager = excluded.manager,
				updated_at = excluded.updated_at, updated_by = excluded.updated_by`),
			strings.ToLower(owner), owner, manager, db.timeArg(m.UpdatedAt), actor); err != nil {
			return mapError(err)
		}
		return tx.insertAudit(ctx, &steward.AuditEvent{At: m.UpdatedAt, Actor: actor, Action: "manager_mapping.set",
			Details: map[string]any{"owner": owner, "manager": manager}})
	})
	if err != nil {
		return nil, fmt.Errorf("set the manager of %s: %w", owner, err)
	}
	return m, nil
}

// DeleteManagerMapping removes owner's mapping (CodeNotFound when there is
// none), audits it and returns it as it was.
func (db *DB) DeleteManagerMapping(ctx context.Context, owner, actor string) (*steward.ManagerMapping, error) {
	var m steward.ManagerMapping
	err := db.WithTx(ctx, func(tx *Tx) error {
		var at dbTime
		err := tx.tx.QueryRowContext(ctx, db.bind(`DELETE FROM manager_mapping WHERE owner_norm = ?
			RETURNING owner, manager, updated_at, updated_by`), strings.ToLower(strings.TrimSpace(owner))).
			Scan(&m.Owner, &m.Manager, &at, &m.UpdatedBy)
		if isNoRows(err) {
			return steward.Errorf(steward.CodeNotFound, "no manager is mapped for %s", owner)
		}
		if err != nil {
			return mapError(err)
		}
		m.UpdatedAt = at.T
		return tx.insertAudit(ctx, &steward.AuditEvent{At: db.now(), Actor: actor, Action: "manager_mapping.deleted",
			Details: map[string]any{"owner": strings.TrimSpace(owner)}})
	})
	if err != nil {
		return nil, fmt.Errorf("delete the manager mapping of %s: %w", owner, err)
	}
	return &m, nil
}

// FindManagerMappings lists every mapping, by owner.
func (db *DB) FindManagerMappings(ctx context.Context) ([]steward.ManagerMapping, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT owner, manager, updated_at, updated_by FROM manager_mapping ORDER BY owner_norm`)
	if err != nil {
		return nil, fmt.Errorf("find manager mappings: %w", err)
	}
	defer rows.Close()
	out := []steward.ManagerMapping{}
	for rows.Next() {
		var m steward.ManagerMapping
		var at dbTime
		if err := rows.Scan(&m.Owner, &m.Manager, &at, &m.UpdatedBy); err != nil {
			return nil, fmt.Errorf("find manager mappings: %w", err)
		}
		m.UpdatedAt = at.T
		out = append(out, m)
	}
	return out, rows.Err()
}

// RecordOwnerManagers stores where each owner's manager was found at an
// escalation, replacing what was recorded before for those owners.
func (db *DB) RecordOwnerManagers(ctx context.Context, found []steward.OwnerManager) error {
	if len(found) == 0 {
		return nil
	}
	err := db.WithTx(ctx, func(tx *Tx) error {
		for _, m := range found {
			if _, err := tx.tx.ExecContext(ctx, db.bind(`INSERT INTO owner_manager (owner_norm, owner, manager, source, detail, resolved_at)
				VALUES (?, ?, ?, ?, ?, ?)
				ON CONFLICT (owner_norm) DO UPDATE SET owner = excluded.owner, manager = excluded.manager, source = excluded.source,
					detail = excluded.detail, resolved_at = excluded.resolved_at`),
				strings.ToLower(strings.TrimSpace(m.Owner)), strings.TrimSpace(m.Owner), m.Manager, m.Source, m.Detail,
				db.timeArg(storedTime(m.ResolvedAt))); err != nil {
				return mapError(err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record owners' managers: %w", err)
	}
	return nil
}

// FindOwnerManagers lists the recorded managers of owners, by owner;
// withoutManager keeps only owners for whom none was found.
func (db *DB) FindOwnerManagers(ctx context.Context, withoutManager bool) ([]steward.OwnerManager, error) {
	q := `SELECT owner, manager, source, detail, resolved_at FROM owner_manager`
	if withoutManager {
		q += ` WHERE source = 'none'`
	}
	rows, err := db.read.QueryContext(ctx, q+` ORDER BY owner_norm`)
	if err != nil {
		return nil, fmt.Errorf("find owners' managers: %w", err)
	}
	defer rows.Close()
	out := []steward.OwnerManager{}
	for rows.Next() {
		var m steward.OwnerManager
		var at dbTime
		if err := rows.Scan(&m.Owner, &m.Manager, &m.Source, &m.Detail, &at); err != nil {
			return nil, fmt.Errorf("find owners' managers: %w", err)
		}
		m.ResolvedAt = at.T
		out = append(out, m)
	}
	return out, rows.Err()
}

// ManagerMappingOf returns the mapped manager of owner, or "" when none is
// mapped.
func (db *DB) ManagerMappingOf(ctx context.Context, owner string) (string, error) {
	var m string
	err := db.read.QueryRowContext(ctx, db.bind(`SELECT manager FROM manager_mapping WHERE owner_norm = ?`),
		strings.ToLower(strings.TrimSpace(owner))).Scan(&m)
	if isNoRows(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("find the manager mapping of %s: %w", owner, err)
	}
	return m, nil
}

// NotificationPeriodPlanned reports whether period's notifications have
// been planned.
func (db *DB) NotificationPeriodPlanned(ctx context.Context, period string) (bool, error) {
	var one int
	err := db.read.QueryRowContext(ctx, db.bind(`SELECT 1 FROM notification_period WHERE period = ?`), period).Scan(&one)
	if isNoRows(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read notification period %s: %w", period, err)
	}
	return true, nil
}

const metaNotificationsSince = "notifications_since"

// NotificationsSince returns when e-mail notifications were first enabled
// on this database, recording now if they never were (the first process
// to record wins; everyone reads its value). Digest moments before it are
// not planned: turning e-mail on does not send a week that had passed.
func (db *DB) NotificationsSince(ctx context.Context, now time.Time) (time.Time, error) {
	var v string
	err := db.read.QueryRowContext(ctx, db.bind(`SELECT value FROM meta WHERE key = ?`), metaNotificationsSince).Scan(&v)
	if isNoRows(err) {
		if _, err := db.write.ExecContext(ctx, db.bind(`INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING`),
			metaNotificationsSince, storedTime(now).Format(time.RFC3339Nano)); err != nil {
			return time.Time{}, fmt.Errorf("record when notifications started: %w", mapError(err))
		}
		err = db.write.QueryRowContext(ctx, db.bind(`SELECT value FROM meta WHERE key = ?`), metaNotificationsSince).Scan(&v)
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("read when notifications started: %w", err)
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("read when notifications started: %q: %w", v, err)
	}
	return t, nil
}

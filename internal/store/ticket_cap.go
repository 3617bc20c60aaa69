package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/stewardhq/steward"
)

// TicketAttempt is what MarkTicketAttempt decided about a ticket's send.
type TicketAttempt struct {
	// Attempts counts the sends of the creation request, this one
	// included; unchanged when the ticket is deferred.
	Attempts int
	// DeferredUntil is set when the ticket must not be sent now: the rule
	// that made its assignment has used its daily cap, and the ticket
	// waits (status deferred) until the start of a UTC day with room.
	DeferredUntil time.Time
	// NewlyDeferred reports that this call deferred the ticket, rather
	// than finding it deferred already (a job woken early).
	NewlyDeferred bool
}

// MarkTicketAttempt is called before each send of a ticket's creation
// request, in its own short write transaction. It counts the send and
// returns the new count, so that after a crash the next try knows an
// earlier request may have reached the ITSM.
//
// When the assignment was made by a rule whose ticket part has a daily cap,
// the ticket's first send also takes one of that rule's tickets of the
// current UTC day. When the day has none left, the ticket is not sent: it
// gets the first later day with room (status deferred, DeferredUntil that
// day's 00:00 UTC, audited "ticket.deferred" once), and that day's count
// includes it, so tickets deferred earlier go first and a day never opens
// more than its cap. Checking and counting happen in this one transaction,
// on SQLite's single writer or, on PostgreSQL, under the locks of the
// ticket's and the rule's rows, so concurrent workers (of any process)
// cannot pass the cap. A
// deferred ticket sent on its day uses the place it holds; one that runs
// on a later day (Steward was down) takes a place again. The cap is the
// rule's as it is at the send; a deleted rule has none. Later sends of a
// ticket (retries) are never capped: the ticket counted on its first.
//
// Must not be called inside WithTx. Errors: CodeNotFound.
func (db *DB) MarkTicketAttempt(ctx context.Context, assignmentID int64) (TicketAttempt, error) {
	var out TicketAttempt
	err := db.WithTx(ctx, func(tx *Tx) error {
		var err error
		out, err = tx.markTicketAttempt(ctx, assignmentID, true)
		return err
	})
	if err != nil {
		return TicketAttempt{}, fmt.Errorf("count attempt of ticket for assignment %d: %w", assignmentID, mapError(err))
	}
	return out, nil
}

// ErrAttemptTakesCapPlace is Tx.MarkTicketAttempt's answer for a send that
// must take a place of its rule's daily cap. Taking one locks the rule's
// row (PostgreSQL), which a transaction shared by many tickets' writes must
// not do: two such transactions, in two processes, could lock two rules in
// opposite orders. Record that attempt with DB.MarkTicketAttempt, in a
// transaction of its own.
var ErrAttemptTakesCapPlace = errors.New("the attempt takes a place of its rule's daily cap: record it in a transaction of its own")

// MarkTicketAttempt is DB.MarkTicketAttempt inside a transaction that also
// holds other tickets' writes (a Batcher's), for every send but one that
// takes a place of a daily cap: that one answers ErrAttemptTakesCapPlace,
// and the caller must roll back what this call did (the Batcher's
// savepoint does), which releases the ticket's row lock.
func (tx *Tx) MarkTicketAttempt(ctx context.Context, assignmentID int64) (TicketAttempt, error) {
	out, err := tx.markTicketAttempt(ctx, assignmentID, false)
	if err != nil {
		return TicketAttempt{}, fmt.Errorf("count attempt of ticket for assignment %d: %w", assignmentID, mapError(err))
	}
	return out, nil
}

// markTicketAttempt counts a send; capOK false refuses (with
// ErrAttemptTakesCapPlace) a send that would take a daily cap's place.
func (tx *Tx) markTicketAttempt(ctx context.Context, assignmentID int64, capOK bool) (TicketAttempt, error) {
	var (
		status         steward.TicketStatus
		attempts       int
		deferred       dbTime
		integrationID  int64
		ruleID, dayCap int64
		out            TicketAttempt
	)
	// Statements prepared once per transaction: a batch counts many
	// tickets' attempts.
	sel, err := tx.stmt(ctx, `SELECT t.status, t.attempts, t.deferred_until, COALESCE(t.integration_id, 0),
		COALESCE(g.rule_id, 0), COALESCE(r.ticket_daily_cap, 0)
		FROM ticket t JOIN assignment g ON g.id = t.assignment_id LEFT JOIN rule r ON r.id = g.rule_id
		WHERE t.assignment_id = ?`+tx.db.forUpdateOf("t"))
	if err != nil {
		return out, err
	}
	err = sel.QueryRowContext(ctx, assignmentID).Scan(&status, &attempts, &deferred, &integrationID, &ruleID, &dayCap)
	if isNoRows(err) {
		return out, steward.Errorf(steward.CodeNotFound, "assignment %d has no ticket", assignmentID)
	} else if err != nil {
		return out, err
	}
	now := tx.db.now()
	if dayCap > 0 && attempts == 0 && status != steward.TicketCreated {
		today := utcDay(now)
		held := status == steward.TicketDeferred && deferred.Valid
		switch {
		case held && utcDay(deferred.T).After(today):
			// Woken before its day (an early job, a user's retry).
			out.DeferredUntil = deferred.T
			return out, nil
		case held && utcDay(deferred.T).Equal(today):
			// Its place was counted when it was deferred; deferred_until
			// stays as history.
		default:
			if !capOK {
				return out, ErrAttemptTakesCapPlace
			}
			// PostgreSQL: the rule's row lock makes its tickets take their
			// places one at a time, as SQLite's one writer does.
			if err := tx.lock(ctx, `SELECT id FROM rule WHERE id = ? FOR UPDATE`, ruleID); err != nil {
				return out, err
			}
			day, err := tx.takeRuleTicketDay(ctx, ruleID, dayCap, today)
			if err != nil {
				return out, err
			}
			if day.After(today) {
				return tx.deferTicket(ctx, assignmentID, integrationID, ruleID, dayCap, day, now)
			}
		}
	}
	upd, err := tx.stmt(ctx, `UPDATE ticket SET attempts = attempts + 1,
		status = CASE WHEN status = ? THEN ? ELSE status END, updated_at = ?
		WHERE assignment_id = ? RETURNING attempts`)
	if err != nil {
		return out, err
	}
	err = upd.QueryRowContext(ctx, string(steward.TicketDeferred), string(steward.TicketPending), tx.db.timeArg(now), assignmentID).Scan(&out.Attempts)
	return out, err
}

// deferTicket marks a ticket deferred until day and audits it.
func (tx *Tx) deferTicket(ctx context.Context, assignmentID, integrationID, ruleID, dayCap int64, day, now time.Time) (TicketAttempt, error) {
	if _, err := tx.tx.ExecContext(ctx, tx.db.bind(`UPDATE ticket SET status = ?, deferred_until = ?, updated_at = ? WHERE assignment_id = ?`),
		string(steward.TicketDeferred), tx.db.timeArg(day), tx.db.timeArg(now), assignmentID); err != nil {
		return TicketAttempt{}, err
	}
	if err := tx.InsertAudit(ctx, &steward.AuditEvent{At: now, Actor: ActorSystem, Action: AuditTicketDeferred,
		IntegrationID: integrationID, AssignmentID: assignmentID,
		Details: map[string]any{"until": day.Format(time.RFC3339), "rule_id": ruleID, "daily_cap": dayCap}}); err != nil {
		return TicketAttempt{}, err
	}
	return TicketAttempt{DeferredUntil: day, NewlyDeferred: true}, nil
}

// takeRuleTicketDay counts one ticket of a rule on the first UTC day from
// today that has fewer than dayCap, and returns that day. Days after today
// fill in order, so the days a rule has counted are consecutive and the
// first one with room is either a counted day below the cap or the day
// after the last one.
func (tx *Tx) takeRuleTicketDay(ctx context.Context, ruleID, dayCap int64, today time.Time) (time.Time, error) {
	var n int64
	err := tx.tx.QueryRowContext(ctx, tx.db.bind(`SELECT tickets FROM rule_ticket_day WHERE rule_id = ? AND day = ?`),
		ruleID, tx.db.timeArg(today)).Scan(&n)
	switch {
	case isNoRows(err):
		// The rule's first ticket today: its past days are not read again.
		if _, err := tx.tx.ExecContext(ctx, tx.db.bind(`DELETE FROM rule_ticket_day WHERE rule_id = ? AND day < ?`),
			ruleID, tx.db.timeArg(today)); err != nil {
			return time.Time{}, err
		}
	case err != nil:
		return time.Time{}, err
	}
	day := today
	if n >= dayCap {
		var free, last dbTime
		if err := tx.tx.QueryRowContext(ctx, tx.db.bind(`SELECT
			(SELECT MIN(day) FROM rule_ticket_day WHERE rule_id = ? AND day > ? AND tickets < ?),
			(SELECT MAX(day) FROM rule_ticket_day WHERE rule_id = ? AND day > ?)`),
			ruleID, tx.db.timeArg(today), dayCap, ruleID, tx.db.timeArg(today)).Scan(&free, &last); err != nil {
			return time.Time{}, err
		}
		switch {
		case free.Valid:
			day = utcDay(free.T)
		case last.Valid:
			day = nextUTCDay(last.T)
		default:
			day = nextUTCDay(today)
		}
	}
	_, err = tx.tx.ExecContext(ctx, tx.db.bind(`INSERT INTO rule_ticket_day (rule_id, day, tickets) VALUES (?, ?, 1)
		ON CONFLICT (rule_id, day) DO UPDATE SET tickets = rule_ticket_day.tickets + 1`), ruleID, tx.db.timeArg(day))
	return day, err
}

// utcDay returns the start (00:00 UTC) of t's UTC day.
func utcDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// nextUTCDay returns the start of the UTC day after t's.
func nextUTCDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC)
}

// releaseRuleTicketDay gives back the place a deferred ticket held on its
// day, when it will not be sent (its assignment ended first), so another
// ticket of the rule can have it. Places of past days are not given back.
func (tx *Tx) releaseRuleTicketDay(ctx context.Context, t *steward.Ticket) error {
	if t.Status != steward.TicketDeferred || t.DeferredUntil == nil {
		return nil
	}
	day := utcDay(*t.DeferredUntil)
	if day.Before(utcDay(tx.db.now())) {
		return nil
	}
	_, err := tx.tx.ExecContext(ctx, tx.db.bind(`UPDATE rule_ticket_day SET tickets = tickets - 1
		WHERE day = ? AND tickets > 0 AND rule_id = (SELECT rule_id FROM assignment WHERE id = ?)`),
		tx.db.timeArg(day), t.AssignmentID)
	return err
}

package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/stewardhq/steward"
)

// Audit actions on tickets.
const (
	AuditTicketCreated        = "ticket.created"
	AuditTicketFailed         = "ticket.failed"
	AuditTicketRetrying       = "ticket.retrying"
	AuditTicketRetryRequested = "ticket.retry_requested"
	AuditTicketDeferred       = "ticket.deferred"
)

// ActorSystem is the actor of changes Steward makes on its own.
const ActorSystem = "system"

// TicketView is steward.TicketView, named here for the store's callers.
type TicketView = steward.TicketView

// TicketFilter selects tickets. Zero fields do not filter.
type TicketFilter struct {
	IntegrationID     int64
	Type              steward.TicketType
	State             steward.TicketState
	Status            steward.TicketStatus
	RecommendationKey string
	// Owner matches the assignment owner's e-mail in any letter case.
	Owner string
	// AssignmentStates keeps tickets whose assignment is in one of them;
	// empty means all.
	AssignmentStates []steward.AssignmentState
	// Scope keeps tickets of resources inside it.
	Scope  steward.Scope
	Cursor string
	Limit  int
}

// ticketColumns reads a ticket aliased t. Every column is COALESCEd so the
// same list works through a LEFT JOIN, where a missing ticket reads as a
// NULL assignment_id.
const ticketColumns = `t.assignment_id, COALESCE(t.integration_id, 0), COALESCE(t.type, ''), COALESCE(t.table_name, ''),
	COALESCE(t.correlation_id, ''), COALESCE(t.status, ''), COALESCE(t.error, ''), COALESCE(t.attempts, 0),
	COALESCE(t.sys_id, ''), COALESCE(t.number, ''), COALESCE(t.link, ''), COALESCE(t.raw_state, ''), COALESCE(t.state_label, ''),
	COALESCE(t.state, ''), COALESCE(t.assignee_email, ''), t.remote_updated_at, COALESCE(t.mod_count, 0), t.last_synced_at,
	COALESCE(t.short_description, ''), COALESCE(t.description, ''), COALESCE(t.caller_email, ''), t.created_at, t.updated_at,
	COALESCE(t.flag, ''), COALESCE(t.ended_state, ''), COALESCE(t.sync_error, ''), t.deferred_until,
	COALESCE(t.group_id, 0)`

// ticketRow receives ticketColumns.
type ticketRow struct {
	id                                                sql.NullInt64
	t                                                 steward.Ticket
	remoteUpdated, lastSynced, created, upd, deferred dbTime
}

func (r *ticketRow) dest() []any {
	t := &r.t
	return []any{&r.id, &t.IntegrationID, &t.Type, &t.Table, &t.CorrelationID, &t.Status, &t.Error, &t.Attempts,
		&t.SysID, &t.Number, &t.Link, &t.RawState, &t.StateLabel, &t.State, &t.AssigneeEmail, &r.remoteUpdated, &t.ModCount, &r.lastSynced,
		&t.ShortDescription, &t.Description, &t.CallerEmail, &r.created, &r.upd, &t.Flag, &t.EndedState, &t.SyncError, &r.deferred,
		&t.GroupID}
}

// ticket returns the scanned ticket, or nil when the LEFT JOIN found none.
func (r *ticketRow) ticket() *steward.Ticket {
	if !r.id.Valid {
		return nil
	}
	t := r.t
	t.AssignmentID = r.id.Int64
	t.RemoteUpdatedAt, t.LastSyncedAt, t.CreatedAt, t.UpdatedAt = r.remoteUpdated.ptr(), r.lastSynced.ptr(), r.created.T, r.upd.T
	t.DeferredUntil = r.deferred.ptr()
	return &t
}

const ticketSelect = `SELECT ` + ticketColumns + ` FROM ticket t`

func scanTicket(sc interface{ Scan(...any) error }) (*steward.Ticket, error) {
	var r ticketRow
	if err := sc.Scan(r.dest()...); err != nil {
		return nil, err
	}
	return r.ticket(), nil
}

func validTicketStatus(s steward.TicketStatus) bool {
	switch s {
	case steward.TicketPending, steward.TicketCreated, steward.TicketRetrying, steward.TicketFailed, steward.TicketDeferred:
		return true
	}
	return false
}

func validTicketState(s steward.TicketState) bool {
	switch s {
	case steward.TicketNew, steward.TicketInProgress, steward.TicketOnHold, steward.TicketResolved, steward.TicketClosed, steward.TicketCanceled:
		return true
	}
	return false
}

// InstallationID is DB.InstallationID, for code that holds only the
// transaction (a ticket's correlation ID is made inside it).
func (tx *Tx) InstallationID(ctx context.Context) (string, error) { return tx.db.InstallationID(ctx) }

// CreateTicket stores the ticket of a ServiceNow-type assignment. It sets
// CreatedAt and UpdatedAt, and Status pending when empty. Errors:
// CodeNotFound when the assignment does not exist; CodeInvalid when it is
// not of type servicenow or a field is bad; CodeConflict when the
// assignment already has a ticket or the correlation ID is taken.
func (tx *Tx) CreateTicket(ctx context.Context, t *steward.Ticket) error {
	if err := tx.createTicket(ctx, t); err != nil {
		return fmt.Errorf("create ticket for assignment %d: %w", t.AssignmentID, mapError(err))
	}
	return nil
}

func (tx *Tx) createTicket(ctx context.Context, t *steward.Ticket) error {
	var typ steward.AssignmentType
	err := tx.tx.QueryRowContext(ctx, tx.db.bind(`SELECT type FROM assignment WHERE id = ?`), t.AssignmentID).Scan(&typ)
	if isNoRows(err) {
		return steward.Errorf(steward.CodeNotFound, "assignment %d not found", t.AssignmentID)
	} else if err != nil {
		return err
	}
	if typ != steward.AssignmentServiceNow {
		return steward.Errorf(steward.CodeInvalid, "assignment %d is of type %s; only servicenow assignments have tickets", t.AssignmentID, typ)
	}
	if t.IntegrationID <= 0 {
		return steward.Errorf(steward.CodeInvalid, "ticket integration is missing")
	}
	if p, err := steward.ParseTicketType(string(t.Type)); err != nil || p != t.Type {
		return steward.Errorf(steward.CodeInvalid, "unknown ticket type %q (want incident, problem or change_request)", t.Type)
	}
	if strings.TrimSpace(t.Table) == "" {
		return steward.Errorf(steward.CodeInvalid, "ticket table is missing")
	}
	if strings.TrimSpace(t.CorrelationID) == "" {
		return steward.Errorf(steward.CodeInvalid, "ticket correlation ID is missing")
	}
	if t.Status == "" {
		t.Status = steward.TicketPending
	}
	if !validTicketStatus(t.Status) {
		return steward.Errorf(steward.CodeInvalid, "unknown ticket status %q", t.Status)
	}
	if t.Status == steward.TicketDeferred {
		return steward.Errorf(steward.CodeInvalid, "a ticket is deferred by its daily cap when it is sent, not when it is created")
	}
	if t.State != "" && !validTicketState(t.State) {
		return steward.Errorf(steward.CodeInvalid, "unknown ticket state %q", t.State)
	}
	// PostgreSQL: a share lock on the integration's row keeps a delete of
	// the integration (which counts its active assignments under a row
	// lock) waiting until this ticket is committed and counted.
	if err := tx.lock(ctx, `SELECT id FROM integration WHERE id = ? FOR KEY SHARE`, t.IntegrationID); err != nil {
		return err
	}
	var exists int
	err = tx.tx.QueryRowContext(ctx, tx.db.bind(`SELECT 1 FROM ticket WHERE assignment_id = ?`), t.AssignmentID).Scan(&exists)
	if err == nil {
		return steward.Errorf(steward.CodeConflict, "assignment %d already has a ticket", t.AssignmentID)
	} else if !isNoRows(err) {
		return err
	}
	now := tx.db.now()
	t.CreatedAt, t.UpdatedAt = now, now
	t.RemoteUpdatedAt, t.LastSyncedAt = storedTimePtr(t.RemoteUpdatedAt), storedTimePtr(t.LastSyncedAt)
	_, err = tx.tx.ExecContext(ctx, tx.db.bind(`INSERT INTO ticket (assignment_id, integration_id, type, table_name, correlation_id,
		status, error, attempts, sys_id, number, link, raw_state, state_label, state, assignee_email, remote_updated_at, mod_count,
		last_synced_at, short_description, description, caller_email, created_at, updated_at, group_id)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		t.AssignmentID, t.IntegrationID, string(t.Type), t.Table, t.CorrelationID,
		string(t.Status), t.Error, t.Attempts, t.SysID, t.Number, t.Link, t.RawState, t.StateLabel, string(t.State), t.AssigneeEmail,
		tx.db.nullTimeArg(t.RemoteUpdatedAt), t.ModCount,
		tx.db.nullTimeArg(t.LastSyncedAt), t.ShortDescription, t.Description, t.CallerEmail, tx.db.timeArg(now), tx.db.timeArg(now),
		sql.NullInt64{Int64: t.GroupID, Valid: t.GroupID != 0})
	return err
}

func storedTimePtr(t *time.Time) *time.Time {
	if t == nil || t.IsZero() {
		return nil
	}
	s := storedTime(*t)
	return &s
}

// FindTicketByAssignment returns an assignment's ticket, or CodeNotFound.
func (db *DB) FindTicketByAssignment(ctx context.Context, assignmentID int64) (*steward.Ticket, error) {
	return findTicketByAssignment(ctx, db, db.read, assignmentID, "")
}

// FindTicketByAssignment is DB.FindTicketByAssignment inside the
// transaction. On PostgreSQL it locks the ticket's row until the
// transaction ends: a write transaction reads a ticket to change it (sync
// compares the stored version with the remote one).
// The statement is prepared once per transaction: a batch of many
// tickets' writes reads each of them.
func (tx *Tx) FindTicketByAssignment(ctx context.Context, assignmentID int64) (*steward.Ticket, error) {
	stmt, err := tx.stmt(ctx, ticketSelect+` WHERE t.assignment_id = ?`+tx.db.forUpdate())
	if err != nil {
		return nil, fmt.Errorf("find ticket of assignment %d: %w", assignmentID, err)
	}
	return foundTicket(stmt.QueryRowContext(ctx, assignmentID), assignmentID)
}

func findTicketByAssignment(ctx context.Context, db *DB, q querier, assignmentID int64, lock string) (*steward.Ticket, error) {
	return foundTicket(q.QueryRowContext(ctx, db.bind(ticketSelect+` WHERE t.assignment_id = ?`+lock), assignmentID), assignmentID)
}

func foundTicket(row *sql.Row, assignmentID int64) (*steward.Ticket, error) {
	t, err := scanTicket(row)
	if isNoRows(err) {
		return nil, steward.Errorf(steward.CodeNotFound, "assignment %d has no ticket", assignmentID)
	} else if err != nil {
		return nil, fmt.Errorf("find ticket of assignment %d: %w", assignmentID, err)
	}
	return t, nil
}

// FindTicketByCorrelationID returns the ticket with a correlation ID, or
// CodeNotFound.
func (db *DB) FindTicketByCorrelationID(ctx context.Context, correlationID string) (*steward.Ticket, error) {
	t, err := scanTicket(db.read.QueryRowContext(ctx, db.bind(ticketSelect+` WHERE t.correlation_id = ?`), correlationID))
	if isNoRows(err) {
		return nil, steward.Errorf(steward.CodeNotFound, "no ticket has correlation ID %q", correlationID)
	} else if err != nil {
		return nil, fmt.Errorf("find ticket by correlation ID: %w", err)
	}
	return t, nil
}

// FindTicketBySysID returns an integration's ticket with an ITSM sys_id
// (for webhooks and polls), or CodeNotFound.
func (db *DB) FindTicketBySysID(ctx context.Context, integrationID int64, sysID string) (*steward.Ticket, error) {
	if sysID == "" {
		return nil, steward.Errorf(steward.CodeInvalid, "sys_id is missing")
	}
	t, err := scanTicket(db.read.QueryRowContext(ctx, db.bind(ticketSelect+` WHERE t.integration_id = ? AND t.sys_id = ?
		ORDER BY t.assignment_id DESC LIMIT 1`), integrationID, sysID))
	if isNoRows(err) {
		return nil, steward.Errorf(steward.CodeNotFound, "integration %d has no ticket with sys_id %q", integrationID, sysID)
	} else if err != nil {
		return nil, fmt.Errorf("find ticket by sys_id: %w", err)
	}
	return t, nil
}

// ticketViewSelect reads ticket views: a ticket with its assignment's
// owner, resource, recommendation, severity and state.
const ticketViewSelect = `SELECT ` + ticketColumns + `, g.owner, res.resource_id, r.key, r.severity, g.state
		FROM ticket t
		JOIN assignment g ON g.id = t.assignment_id
		JOIN assessment a ON a.id = g.assessment_id
		JOIN recommendation r ON r.id = a.recommendation_id
		JOIN resource res ON res.id = a.resource_id`

func scanTicketView(sc interface{ Scan(...any) error }) (*TicketView, error) {
	var r ticketRow
	v := new(TicketView)
	if err := sc.Scan(append(r.dest(), &v.Owner, &v.ResourceID, &v.RecommendationKey, &v.Severity, &v.AssignmentState)...); err != nil {
		return nil, err
	}
	v.Ticket = *r.ticket()
	return v, nil
}

// FindTicketView returns the ticket of an assignment (tickets have no ID
// of their own) with what a listing shows of the assignment, or
// CodeNotFound.
func (db *DB) FindTicketView(ctx context.Context, assignmentID int64) (*TicketView, error) {
	v, err := scanTicketView(db.read.QueryRowContext(ctx, db.bind(ticketViewSelect+` WHERE t.assignment_id = ?`), assignmentID))
	if isNoRows(err) {
		return nil, steward.Errorf(steward.CodeNotFound, "assignment %d has no ticket", assignmentID)
	} else if err != nil {
		return nil, fmt.Errorf("find ticket of assignment %d: %w", assignmentID, err)
	}
	return v, nil
}

// FindTickets lists tickets by assignment ID, one page at a time, with their
// assignments' owner, resource, recommendation, severity and state.
// Errors: CodeInvalid for a bad cursor, limit, type, state or status.
func (db *DB) FindTickets(ctx context.Context, f TicketFilter) ([]*TicketView, string, error) {
	out, next, err := db.findTickets(ctx, f)
	if err != nil {
		return nil, "", fmt.Errorf("find tickets: %w", err)
	}
	return out, next, nil
}

func (db *DB) findTickets(ctx context.Context, f TicketFilter) ([]*TicketView, string, error) {
	limit, err := pageLimit(f.Limit)
	if err != nil {
		return nil, "", err
	}
	after, hasAfter, err := decodeCursor[int64](cursorTicket, f.Cursor)
	if err != nil {
		return nil, "", err
	}
	var where []string
	var args []any
	if f.IntegrationID != 0 {
		where = append(where, "t.integration_id = ?")
		args = append(args, f.IntegrationID)
	}
	if f.Type != "" {
		if p, err := steward.ParseTicketType(string(f.Type)); err != nil || p != f.Type {
			return nil, "", steward.Errorf(steward.CodeInvalid, "unknown ticket type %q (want incident, problem or change_request)", f.Type)
		}
		where = append(where, "t.type = ?")
		args = append(args, string(f.Type))
	}
	if f.State != "" {
		if !validTicketState(f.State) {
			return nil, "", steward.Errorf(steward.CodeInvalid, "unknown ticket state %q", f.State)
		}
		where = append(where, "t.state = ?")
		args = append(args, string(f.State))
	}
	if f.Status != "" {
		if !validTicketStatus(f.Status) {
			return nil, "", steward.Errorf(steward.CodeInvalid, "unknown ticket status %q (want pending, deferred, created, retrying or failed)", f.Status)
		}
		where = append(where, "t.status = ?")
		args = append(args, string(f.Status))
	}
	if f.RecommendationKey != "" {
		where = append(where, "r.key = ?")
		args = append(args, f.RecommendationKey)
	}
	if f.Owner != "" {
		where = append(where, "g.owner_norm = ?")
		args = append(args, strings.ToLower(strings.TrimSpace(f.Owner)))
	}
	if len(f.AssignmentStates) > 0 {
		for _, s := range f.AssignmentStates {
			switch s {
			case steward.AssignmentActive, steward.AssignmentCompleted, steward.AssignmentRemoved:
			default:
				return nil, "", steward.Errorf(steward.CodeInvalid, "unknown assignment state %q", s)
			}
			args = append(args, string(s))
		}
		where = append(where, "g.state IN ("+placeholders(len(f.AssignmentStates))+")")
	}
	if cond, cargs, err := scopeRange("res.norm_id", f.Scope); err != nil {
		return nil, "", err
	} else if cond != "" {
		where = append(where, cond)
		args = append(args, cargs...)
	}
	if hasAfter {
		where = append(where, "t.assignment_id > ?")
		args = append(args, after)
	}
	q := ticketViewSelect
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY t.assignment_id LIMIT ?"
	args = append(args, limit+1)
	rows, err := db.read.QueryContext(ctx, db.bind(q), args...)
	if err != nil {
		return nil, "", err
	}
	defer rows.Close()
	out := []*TicketView{}
	for rows.Next() {
		v, err := scanTicketView(rows)
		if err != nil {
			return nil, "", err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, "", err
	}
	if len(out) > limit {
		out = out[:limit]
		return out, encodeCursor(cursorTicket, out[limit-1].AssignmentID), nil
	}
	return out, "", nil
}

// RecordTicketCreated records that the ticket's record exists in the ITSM:
// it copies the remote fields (SysID, Number, Link, RawState, StateLabel,
// State, AssigneeEmail, RemoteUpdatedAt, ModCount; Table too when set),
// sets Status created, clears Error, sets LastSyncedAt, and audits
// "ticket.created" (actor system). Recording the same record again returns
// the stored ticket and changes nothing. Must not be called inside WithTx.
// Errors: CodeNotFound; CodeInvalid without a sys_id; CodeConflict when the
// ticket is already linked to a different record.
func (db *DB) RecordTicketCreated(ctx context.Context, assignmentID int64, remote *steward.Ticket) (*steward.Ticket, error) {
	return db.RecordGroupTicketCreated(ctx, assignmentID, remote, nil)
}

// RecordGroupTicketCreated is RecordTicketCreated for a group ticket whose
// record lists the member assignments listed: they are marked as named by
// the ticket in the same transaction, so no work note names them again.
func (db *DB) RecordGroupTicketCreated(ctx context.Context, assignmentID int64, remote *steward.Ticket, listed []int64) (*steward.Ticket, error) {
	var out *steward.Ticket
	err := db.WithTx(ctx, func(tx *Tx) error {
		var err error
		out, err = tx.recordGroupTicketCreated(ctx, assignmentID, remote, listed)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("record created ticket for assignment %d: %w", assignmentID, mapError(err))
	}
	return out, nil
}

// RecordGroupTicketCreated is DB.RecordGroupTicketCreated inside the
// caller's transaction, so that what else the caller writes there (the
// ticket_create job's completion) commits with the result or not at all.
func (tx *Tx) RecordGroupTicketCreated(ctx context.Context, assignmentID int64, remote *steward.Ticket, listed []int64) (*steward.Ticket, error) {
	out, err := tx.recordGroupTicketCreated(ctx, assignmentID, remote, listed)
	if err != nil {
		return nil, fmt.Errorf("record created ticket for assignment %d: %w", assignmentID, mapError(err))
	}
	return out, nil
}

func (tx *Tx) recordGroupTicketCreated(ctx context.Context, assignmentID int64, remote *steward.Ticket, listed []int64) (*steward.Ticket, error) {
	out, err := tx.recordTicketCreated(ctx, assignmentID, remote)
	if err != nil {
		return nil, err
	}
	return out, tx.MarkListedInGroup(ctx, listed)
}

func (tx *Tx) recordTicketCreated(ctx context.Context, assignmentID int64, remote *steward.Ticket) (*steward.Ticket, error) {
	if remote == nil || strings.TrimSpace(remote.SysID) == "" {
		return nil, steward.Errorf(steward.CodeInvalid, "the created record has no sys_id")
	}
	if remote.State != "" && !validTicketState(remote.State) {
		return nil, steward.Errorf(steward.CodeInvalid, "unknown ticket state %q", remote.State)
	}
	t, err := tx.FindTicketByAssignment(ctx, assignmentID)
	if err != nil {
		return nil, err
	}
	if t.SysID != "" && t.SysID != remote.SysID {
		return nil, steward.Errorf(steward.CodeConflict, "the ticket of assignment %d is already linked to record %s (%s), not %s",
			assignmentID, t.Number, t.SysID, remote.SysID)
	}
	if t.Status == steward.TicketCreated {
		return t, nil
	}
	now := tx.db.now()
	if remote.Table != "" {
		t.Table = remote.Table
	}
	t.SysID, t.Number, t.Link = remote.SysID, remote.Number, remote.Link
	t.RawState, t.StateLabel, t.State, t.AssigneeEmail = remote.RawState, remote.StateLabel, remote.State, remote.AssigneeEmail
	t.RemoteUpdatedAt, t.ModCount = storedTimePtr(remote.RemoteUpdatedAt), remote.ModCount
	t.Status, t.Error, t.LastSyncedAt, t.UpdatedAt = steward.TicketCreated, "", &now, now
	stmt, err := tx.stmt(ctx, `UPDATE ticket SET table_name = ?, sys_id = ?, number = ?, link = ?, raw_state = ?,
		state_label = ?, state = ?, assignee_email = ?, remote_updated_at = ?, mod_count = ?, status = ?, error = ?, last_synced_at = ?,
		updated_at = ? WHERE assignment_id = ?`)
	if err != nil {
		return nil, err
	}
	if _, err := stmt.ExecContext(ctx,
		t.Table, t.SysID, t.Number, t.Link, t.RawState, t.StateLabel, string(t.State), t.AssigneeEmail,
		tx.db.nullTimeArg(t.RemoteUpdatedAt), t.ModCount, string(t.Status), t.Error, tx.db.timeArg(now), tx.db.timeArg(now), assignmentID); err != nil {
		return nil, err
	}
	if err := tx.InsertAudit(ctx, &steward.AuditEvent{At: now, Actor: ActorSystem, Action: AuditTicketCreated,
		IntegrationID: t.IntegrationID, AssignmentID: assignmentID,
		Details: map[string]any{"number": t.Number, "table": t.Table, "sys_id": t.SysID}}); err != nil {
		return nil, err
	}
	return t, nil
}

// RecordTicketFailure records a failed try: status retrying (a later try
// may succeed) or failed (the ITSM refused it; a user may retry), with the
// ITSM's reason. It audits "ticket.retrying" or "ticket.failed" only when
// the status or reason changed, so a long outage does not flood the log.
// Must not be called inside WithTx. Errors: CodeNotFound; CodeInvalid for
// another status; CodeConflict when the ticket is already created.
func (db *DB) RecordTicketFailure(ctx context.Context, assignmentID int64, status steward.TicketStatus, reason string) error {
	err := db.WithTx(ctx, func(tx *Tx) error {
		return tx.recordTicketFailure(ctx, assignmentID, status, reason)
	})
	if err != nil {
		return fmt.Errorf("record failed ticket for assignment %d: %w", assignmentID, mapError(err))
	}
	return nil
}

func (tx *Tx) recordTicketFailure(ctx context.Context, assignmentID int64, status steward.TicketStatus, reason string) error {
	var action string
	switch status {
	case steward.TicketRetrying:
		action = AuditTicketRetrying
	case steward.TicketFailed:
		action = AuditTicketFailed
	default:
		return steward.Errorf(steward.CodeInvalid, "a failure is recorded as retrying or failed, not %q", status)
	}
	t, err := tx.FindTicketByAssignment(ctx, assignmentID)
	if err != nil {
		return err
	}
	if t.Status == steward.TicketCreated {
		return steward.Errorf(steward.CodeConflict, "the ticket of assignment %d is already created (%s)", assignmentID, t.Number)
	}
	if t.Status == status && t.Error == reason {
		return nil
	}
	if err := tx.releaseRuleTicketDay(ctx, t); err != nil {
		return err
	}
	now := tx.db.now()
	if _, err := tx.tx.ExecContext(ctx, tx.db.bind(`UPDATE ticket SET status = ?, error = ?, updated_at = ? WHERE assignment_id = ?`),
		string(status), reason, tx.db.timeArg(now), assignmentID); err != nil {
		return err
	}
	return tx.InsertAudit(ctx, &steward.AuditEvent{At: now, Actor: ActorSystem, Action: action,
		IntegrationID: t.IntegrationID, AssignmentID: assignmentID,
		Details: map[string]any{"reason": reason, "attempts": t.Attempts}})
}

// ResetTicketForRetry puts a failed ticket back to pending on a user's
// request (Error stays until the next try) and audits
// "ticket.retry_requested". Errors: CodeNotFound; CodeConflict when the
// ticket is not failed or its assignment has ended.
func (tx *Tx) ResetTicketForRetry(ctx context.Context, assignmentID int64, actor string) (*steward.Ticket, error) {
	t, err := tx.resetTicketForRetry(ctx, assignmentID, actor)
	if err != nil {
		return nil, fmt.Errorf("retry ticket for assignment %d: %w", assignmentID, mapError(err))
	}
	return t, nil
}

func (tx *Tx) resetTicketForRetry(ctx context.Context, assignmentID int64, actor string) (*steward.Ticket, error) {
	t, err := tx.FindTicketByAssignment(ctx, assignmentID)
	if err != nil {
		return nil, err
	}
	if t.Status != steward.TicketFailed {
		return nil, steward.Errorf(steward.CodeConflict, "the ticket of assignment %d is %s; only failed tickets can be retried", assignmentID, t.Status)
	}
	var state steward.AssignmentState
	if err := tx.tx.QueryRowContext(ctx, tx.db.bind(`SELECT state FROM assignment WHERE id = ?`), assignmentID).Scan(&state); err != nil {
		return nil, err
	}
	if t.GroupID != 0 {
		// A group ticket is retried while any member is active.
		var active int
		if err := tx.tx.QueryRowContext(ctx, tx.db.bind(`SELECT COUNT(*) FROM assignment WHERE ticket_group_id = ? AND state = 'active'`),
			t.GroupID).Scan(&active); err != nil {
			return nil, err
		}
		if active > 0 {
			state = steward.AssignmentActive
		}
	}
	if state != steward.AssignmentActive {
		return nil, steward.Errorf(steward.CodeConflict, "assignment %d is %s; only tickets of active assignments can be retried", assignmentID, state)
	}
	now := tx.db.now()
	t.Status, t.UpdatedAt = steward.TicketPending, now
	if _, err := tx.tx.ExecContext(ctx, tx.db.bind(`UPDATE ticket SET status = ?, updated_at = ? WHERE assignment_id = ?`),
		string(t.Status), tx.db.timeArg(now), assignmentID); err != nil {
		return nil, err
	}
	if err := tx.InsertAudit(ctx, &steward.AuditEvent{At: now, Actor: actor, Action: AuditTicketRetryRequested,
		IntegrationID: t.IntegrationID, AssignmentID: assignmentID,
		Details: map[string]any{"previous_error": t.Error}}); err != nil {
		return nil, err
	}
	return t, nil
}

// UpdateTicketRemote applies a view of the ticket's record read from the
// ITSM if it is newer than the stored one: a greater ModCount, or an equal
// ModCount with a later RemoteUpdatedAt. It copies RawState, StateLabel,
// State, AssigneeEmail, RemoteUpdatedAt and ModCount (Number and Link when
// set) and sets LastSyncedAt, and reports whether it changed anything. A
// stale view changes nothing; a view of the same version only moves
// LastSyncedAt (and reports false). Must not be called inside WithTx.
// Errors: CodeNotFound; CodeConflict when the view is of another record
// (sys_id).
func (db *DB) UpdateTicketRemote(ctx context.Context, assignmentID int64, remote *steward.Ticket) (bool, error) {
	var changed bool
	err := db.WithTx(ctx, func(tx *Tx) error {
		var err error
		changed, err = tx.updateTicketRemote(ctx, assignmentID, remote)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("update ticket for assignment %d from the ITSM: %w", assignmentID, mapError(err))
	}
	return changed, nil
}

func (tx *Tx) updateTicketRemote(ctx context.Context, assignmentID int64, remote *steward.Ticket) (bool, error) {
	if remote == nil {
		return false, steward.Errorf(steward.CodeInvalid, "remote ticket is missing")
	}
	if remote.State != "" && !validTicketState(remote.State) {
		return false, steward.Errorf(steward.CodeInvalid, "unknown ticket state %q", remote.State)
	}
	t, err := tx.FindTicketByAssignment(ctx, assignmentID)
	if err != nil {
		return false, err
	}
	if remote.SysID != "" && t.SysID != "" && remote.SysID != t.SysID {
		return false, steward.Errorf(steward.CodeConflict, "the ticket of assignment %d is record %s, not %s", assignmentID, t.SysID, remote.SysID)
	}
	ru := storedTimePtr(remote.RemoteUpdatedAt)
	now := tx.db.now()
	switch cmpVersion(remote.ModCount, ru, t.ModCount, t.RemoteUpdatedAt) {
	case -1:
		return false, nil
	case 0:
		_, err := tx.tx.ExecContext(ctx, tx.db.bind(`UPDATE ticket SET last_synced_at = ? WHERE assignment_id = ?`), tx.db.timeArg(now), assignmentID)
		return false, err
	}
	if remote.Number != "" {
		t.Number = remote.Number
	}
	if remote.Link != "" {
		t.Link = remote.Link
	}
	_, err = tx.tx.ExecContext(ctx, tx.db.bind(`UPDATE ticket SET number = ?, link = ?, raw_state = ?, state_label = ?, state = ?,
		assignee_email = ?, remote_updated_at = ?, mod_count = ?, last_synced_at = ?, updated_at = ? WHERE assignment_id = ?`),
		t.Number, t.Link, remote.RawState, remote.StateLabel, string(remote.State), remote.AssigneeEmail,
		tx.db.nullTimeArg(ru), remote.ModCount, tx.db.timeArg(now), tx.db.timeArg(now), assignmentID)
	return err == nil, err
}

// cmpVersion orders two versions of a record: by mod count, then by update
// time (a missing time is oldest).
func cmpVersion(modA int, atA *time.Time, modB int, atB *time.Time) int {
	switch {
	case modA > modB:
		return 1
	case modA < modB:
		return -1
	}
	switch {
	case atA == nil && atB == nil:
		return 0
	case atA == nil:
		return -1
	case atB == nil:
		return 1
	}
	return atA.Compare(*atB)
}

// TicketVersions answers the sys_mod_count Steward holds for each ticket
// of an integration, by assignment ID: one narrow read of an index-sized
// result, for watchers that poll how far sync has come (`steward bench`)
// without listing whole tickets.
func (db *DB) TicketVersions(ctx context.Context, integrationID int64) (map[int64]int, error) {
	rows, err := db.read.QueryContext(ctx, db.bind(`SELECT assignment_id, COALESCE(mod_count, 0) FROM ticket WHERE integration_id = ?`), integrationID)
	if err != nil {
		return nil, fmt.Errorf("read ticket versions of integration %d: %w", integrationID, err)
	}
	defer rows.Close()
	out := map[int64]int{}
	for rows.Next() {
		var id int64
		var mod int
		if err := rows.Scan(&id, &mod); err != nil {
			return nil, fmt.Errorf("read ticket versions of integration %d: %w", integrationID, err)
		}
		out[id] = mod
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read ticket versions of integration %d: %w", integrationID, err)
	}
	return out, nil
}

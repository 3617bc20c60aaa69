package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/stewardhq/steward"
)

// AssignmentUpdate changes an active assignment; nil fields stay as they are.
// ETA sets the ETA and ClearETA removes it (both at once is invalid).
type AssignmentUpdate struct {
	Owner              *string
	DueDate            *time.Time
	GracePeriod        *bool
	ETA                *time.Time
	ClearETA           bool
	ETAJustification   *string
	OwnerEmailOptOut   *bool
	ManagerEmailOptOut *bool
	// AllowEnded allows the update on an assignment that has ended too: sync
	// moves the owner of an assignment its ticket completed when
	// ServiceNow reassigns the ended ticket.
	AllowEnded bool
}

// AssignmentFilter selects assignments. Zero fields do not filter.
type AssignmentFilter struct {
	// Owner matches the owner's e-mail address in any letter case.
	Owner string
	// States defaults to active only.
	States []steward.AssignmentState
	// OverdueAt keeps assignments due before it (non-zero only).
	OverdueAt time.Time
	// DueBefore keeps assignments due before it (non-zero only).
	DueBefore         time.Time
	Scope             steward.Scope
	RecommendationKey string
	ResourceID        string
	// AssessmentIDs keeps the assignments of these assessments (a page of
	// findings at once, instead of one query per finding).
	AssessmentIDs []int64
	// IntegrationID keeps assignments whose ticket belongs to the
	// integration.
	IntegrationID int64
	// TicketState and TicketStatus keep assignments whose ticket (their
	// own or their group's) has that normalized state or creation status;
	// assignments without a ticket never match.
	TicketState  steward.TicketState
	TicketStatus steward.TicketStatus
	Cursor       string
	Limit        int
}

const assignmentSelect = `SELECT g.id, g.assessment_id, r.key, res.resource_id, r.severity, g.type, g.state, g.owner,
	g.due_date, g.grace_period, g.eta, g.eta_justification, g.owner_email_opt_out, g.manager_email_opt_out,
	g.created_at, g.created_by, g.updated_at, g.ended_at, g.end_reason, COALESCE(g.rule_id, 0), g.rule_condition, ` + ticketColumns + `
	FROM assignment g
	JOIN assessment a ON a.id = g.assessment_id
	JOIN recommendation r ON r.id = a.recommendation_id
	JOIN resource res ON res.id = a.resource_id
	LEFT JOIN ticket_group tg ON tg.id = g.ticket_group_id
	LEFT JOIN ticket t ON t.assignment_id = COALESCE(tg.leader_assignment_id, g.id)`

func scanAssignment(sc interface{ Scan(...any) error }) (*steward.Assignment, error) {
	a := new(steward.Assignment)
	var due, eta, created, updated, ended dbTime
	var t ticketRow
	if err := sc.Scan(append([]any{&a.ID, &a.AssessmentID, &a.RecommendationKey, &a.ResourceID, &a.Severity, &a.Type, &a.State, &a.Owner,
		&due, &a.GracePeriod, &eta, &a.ETAJustification, &a.OwnerEmailOptOut, &a.ManagerEmailOptOut,
		&created, &a.CreatedBy, &updated, &ended, &a.EndReason, &a.RuleID, &a.RuleCondition}, t.dest()...)...); err != nil {
		return nil, err
	}
	a.DueDate, a.ETA, a.CreatedAt, a.UpdatedAt, a.EndedAt = due.T, eta.ptr(), created.T, updated.T, ended.ptr()
	a.Ticket = t.ticket()
	return a, nil
}

// FindAssignmentByID returns one assignment, with its Ticket when it has
// one (servicenow type), or CodeNotFound.
func (db *DB) FindAssignmentByID(ctx context.Context, id int64) (*steward.Assignment, error) {
	return findAssignmentByID(ctx, db, db.read, id, "")
}

// FindAssignmentByID is DB.FindAssignmentByID inside the transaction. On
// PostgreSQL it locks the assignment's row until the transaction ends:
// a write transaction reads an assignment to change it.
func (tx *Tx) FindAssignmentByID(ctx context.Context, id int64) (*steward.Assignment, error) {
	return findAssignmentByID(ctx, tx.db, txStmts{tx}, id, tx.db.forUpdateOf("g"))
}

func findAssignmentByID(ctx context.Context, db *DB, q querier, id int64, lock string) (*steward.Assignment, error) {
	a, err := scanAssignment(q.QueryRowContext(ctx, db.bind(assignmentSelect+` WHERE g.id = ?`+lock), id))
	if isNoRows(err) {
		return nil, steward.Errorf(steward.CodeNotFound, "assignment %d not found", id)
	} else if err != nil {
		return nil, fmt.Errorf("find assignment %d: %w", id, err)
	}
	return a, nil
}

// CreateAssignment stores an active assignment on a.AssessmentID and records
// a "created" event with reason. It fills in a.ID, State, RecommendationKey,
// ResourceID, Severity, CreatedAt, UpdatedAt and CreatedBy (actor); Type
// defaults to manual. A servicenow assignment gets its ticket from
// Tx.CreateTicket in the same transaction. It is data access only: the
// owner, dates and ETA are validated by package assignment, which every
// path that creates assignments goes through. Errors: CodeNotFound if the
// assessment does not exist; CodeInvalid if it is not Unhealthy or the type
// is unknown; CodeConflict if it already has an active assignment.
func (tx *Tx) CreateAssignment(ctx context.Context, a *steward.Assignment, actor, reason string) error {
	if err := tx.createAssignment(ctx, a, actor, reason); err != nil {
		return fmt.Errorf("create assignment on assessment %d: %w", a.AssessmentID, mapError(err))
	}
	return nil
}

func (tx *Tx) createAssignment(ctx context.Context, a *steward.Assignment, actor, reason string) error {
	asm, err := tx.FindAssessmentByID(ctx, a.AssessmentID)
	if err != nil {
		return err
	}
	if asm.Status != steward.StatusUnhealthy {
		return steward.Errorf(steward.CodeInvalid, "assessment %d is %s; only unhealthy assessments can be assigned", asm.ID, asm.Status)
	}
	if asm.AssignmentID != 0 {
		return steward.Errorf(steward.CodeConflict, "assessment %d already has active assignment %d", asm.ID, asm.AssignmentID)
	}
	switch a.Type {
	case "":
		a.Type = steward.AssignmentManual
	case steward.AssignmentManual, steward.AssignmentServiceNow:
	default:
		return steward.Errorf(steward.CodeInvalid, "assignment type %q is not one of manual, servicenow", a.Type)
	}
	now := tx.db.now()
	a.State = steward.AssignmentActive
	a.RecommendationKey, a.ResourceID, a.Severity = asm.RecommendationKey, asm.ResourceID, asm.Severity
	a.DueDate = storedTime(a.DueDate)
	if a.ETA != nil {
		if a.ETA.IsZero() {
			a.ETA = nil
		} else {
			t := storedTime(*a.ETA)
			a.ETA = &t
		}
	}
	a.CreatedAt, a.UpdatedAt, a.CreatedBy = now, now, actor
	a.EndedAt, a.EndReason = nil, ""
	var ruleID any // NULL unless a rule made it
	if a.RuleID != 0 {
		ruleID = a.RuleID
	}
	// The assessment's row is locked (Tx.FindAssessmentByID), but on
	// PostgreSQL a writer that locked it first may have committed an
	// active assignment this statement's snapshot does not show:
	// assignment_active then refuses the second, and DO NOTHING makes that
	// a plain CodeConflict instead of an error that aborts the transaction.
	//
	// recommendation_id and resource_id copy the assessment's identity,
	// which never changes, for the governance report (migration 0019).
	insert, err := tx.stmt(ctx, `INSERT INTO assignment (assessment_id, type, state, owner, owner_norm, due_date,
		grace_period, eta, eta_justification, owner_email_opt_out, manager_email_opt_out, created_at, created_by, updated_at,
		rule_id, rule_condition, recommendation_id, resource_id)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,
			(SELECT recommendation_id FROM assessment WHERE id = ?), (SELECT resource_id FROM assessment WHERE id = ?))
		ON CONFLICT (assessment_id) WHERE state = 'active' DO NOTHING RETURNING id`)
	if err != nil {
		return err
	}
	err = insert.QueryRowContext(ctx,
		a.AssessmentID, string(a.Type), string(a.State), a.Owner, strings.ToLower(a.Owner), tx.db.timeArg(a.DueDate),
		boolArg(a.GracePeriod), tx.db.nullTimeArg(a.ETA), a.ETAJustification, boolArg(a.OwnerEmailOptOut), boolArg(a.ManagerEmailOptOut),
		tx.db.timeArg(now), actor, tx.db.timeArg(now), ruleID, a.RuleCondition, a.AssessmentID, a.AssessmentID).Scan(&a.ID)
	if isNoRows(err) {
		return steward.Errorf(steward.CodeConflict, "assessment %d already has an active assignment", asm.ID)
	}
	if err != nil {
		return err
	}
	return tx.addEvent(ctx, a.ID, now, actor, steward.ActionCreated, reason, nil)
}

func (tx *Tx) addEvent(ctx context.Context, assignmentID int64, at time.Time, actor, action, reason string, changes map[string]steward.Change) error {
	var cj string
	if len(changes) > 0 {
		b, err := json.Marshal(changes)
		if err != nil {
			return fmt.Errorf("encode changes: %w", err)
		}
		cj = string(b)
	}
	stmt, err := tx.stmt(ctx, `INSERT INTO assignment_event (assignment_id, at, actor, action, reason, changes) VALUES (?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("record %s event: %w", action, err)
	}
	if _, err := stmt.ExecContext(ctx, assignmentID, tx.db.timeArg(at), actor, action, reason, cj); err != nil {
		return fmt.Errorf("record %s event: %w", action, err)
	}
	return nil
}

// loadActive returns the assignment for a change, or CodeNotFound, or
// CodeConflict when it has ended.
func (tx *Tx) loadActive(ctx context.Context, id int64, verb string) (*steward.Assignment, error) {
	a, err := tx.FindAssignmentByID(ctx, id)
	if err != nil {
		return nil, err
	}
	if a.State != steward.AssignmentActive {
		return nil, steward.Errorf(steward.CodeConflict, "assignment %d is %s; only active assignments can be %s", id, a.State, verb)
	}
	return a, nil
}

// changeTime renders a time for an event's Changes: the JSON it is stored as
// keeps strings, so the in-memory value is the same string.
func changeTime(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// UpdateAssignment applies upd to an active assignment and records an
// "updated" event listing each field that really changed (JSON field name →
// from/to; times as RFC 3339 strings). An update that changes nothing writes
// nothing. The new values are validated by package assignment. Errors:
// CodeNotFound; CodeConflict if the assignment has ended (unless
// upd.AllowEnded).
func (tx *Tx) UpdateAssignment(ctx context.Context, id int64, upd AssignmentUpdate, actor, reason string) (*steward.Assignment, error) {
	a, err := tx.updateAssignment(ctx, id, upd, actor, reason)
	if err != nil {
		return nil, fmt.Errorf("update assignment %d: %w", id, mapError(err))
	}
	return a, nil
}

func (tx *Tx) updateAssignment(ctx context.Context, id int64, upd AssignmentUpdate, actor, reason string) (*steward.Assignment, error) {
	a, err := tx.loadActive(ctx, id, "changed")
	if upd.AllowEnded && steward.ErrorCode(err) == steward.CodeConflict {
		a, err = tx.FindAssignmentByID(ctx, id)
	}
	if err != nil {
		return nil, err
	}
	changes := make(map[string]steward.Change)
	if upd.Owner != nil && *upd.Owner != a.Owner {
		changes["owner"] = steward.Change{From: a.Owner, To: *upd.Owner}
		a.Owner = *upd.Owner
	}
	if upd.DueDate != nil && !upd.DueDate.IsZero() {
		if d := storedTime(*upd.DueDate); !d.Equal(a.DueDate) {
			changes["due_date"] = steward.Change{From: changeTime(&a.DueDate), To: changeTime(&d)}
			a.DueDate = d
		}
	}
	if upd.GracePeriod != nil && *upd.GracePeriod != a.GracePeriod {
		changes["grace_period"] = steward.Change{From: a.GracePeriod, To: *upd.GracePeriod}
		a.GracePeriod = *upd.GracePeriod
	}
	if upd.ETA != nil && !upd.ETA.IsZero() {
		if e := storedTime(*upd.ETA); a.ETA == nil || !e.Equal(*a.ETA) {
			changes["eta"] = steward.Change{From: changeTime(a.ETA), To: changeTime(&e)}
			a.ETA = &e
		}
	}
	if (upd.ClearETA || (upd.ETA != nil && upd.ETA.IsZero())) && a.ETA != nil {
		changes["eta"] = steward.Change{From: changeTime(a.ETA), To: nil}
		a.ETA = nil
	}
	if upd.ETAJustification != nil && *upd.ETAJustification != a.ETAJustification {
		changes["eta_justification"] = steward.Change{From: a.ETAJustification, To: *upd.ETAJustification}
		a.ETAJustification = *upd.ETAJustification
	}
	if upd.OwnerEmailOptOut != nil && *upd.OwnerEmailOptOut != a.OwnerEmailOptOut {
		changes["owner_email_opt_out"] = steward.Change{From: a.OwnerEmailOptOut, To: *upd.OwnerEmailOptOut}
		a.OwnerEmailOptOut = *upd.OwnerEmailOptOut
	}
	if upd.ManagerEmailOptOut != nil && *upd.ManagerEmailOptOut != a.ManagerEmailOptOut {
		changes["manager_email_opt_out"] = steward.Change{From: a.ManagerEmailOptOut, To: *upd.ManagerEmailOptOut}
		a.ManagerEmailOptOut = *upd.ManagerEmailOptOut
	}
	if len(changes) == 0 {
		return a, nil
	}
	now := tx.db.now()
	a.UpdatedAt = now
	if _, err := tx.tx.ExecContext(ctx, tx.db.bind(`UPDATE assignment SET owner = ?, owner_norm = ?, due_date = ?, grace_period = ?,
		eta = ?, eta_justification = ?, owner_email_opt_out = ?, manager_email_opt_out = ?, updated_at = ? WHERE id = ?`),
		a.Owner, strings.ToLower(a.Owner), tx.db.timeArg(a.DueDate), boolArg(a.GracePeriod), tx.db.nullTimeArg(a.ETA),
		a.ETAJustification, boolArg(a.OwnerEmailOptOut), boolArg(a.ManagerEmailOptOut), tx.db.timeArg(now), id); err != nil {
		return nil, err
	}
	if err := tx.addEvent(ctx, id, now, actor, steward.ActionUpdated, reason, changes); err != nil {
		return nil, err
	}
	return a, nil
}

// EndAssignment ends an active assignment as completed or removed, records
// when and why, and adds a "completed" or "removed" event. Errors:
// CodeNotFound; CodeConflict if it has already ended; CodeInvalid for any
// other state.
func (tx *Tx) EndAssignment(ctx context.Context, id int64, state steward.AssignmentState, actor, reason string) (*steward.Assignment, error) {
	a, err := tx.endAssignment(ctx, id, state, actor, reason)
	if err != nil {
		return nil, fmt.Errorf("end assignment %d: %w", id, mapError(err))
	}
	return a, nil
}

func (tx *Tx) endAssignment(ctx context.Context, id int64, state steward.AssignmentState, actor, reason string) (*steward.Assignment, error) {
	var action string
	switch state {
	case steward.AssignmentCompleted:
		action = steward.ActionCompleted
	case steward.AssignmentRemoved:
		action = steward.ActionRemoved
	default:
		return nil, steward.Errorf(steward.CodeInvalid, "an assignment can only end as completed or removed, not %q", state)
	}
	a, err := tx.loadActive(ctx, id, "ended")
	if err != nil {
		return nil, err
	}
	now := tx.db.now()
	a.State, a.EndedAt, a.EndReason, a.UpdatedAt = state, &now, reason, now
	if _, err := tx.tx.ExecContext(ctx, tx.db.bind(`UPDATE assignment SET state = ?, ended_at = ?, end_reason = ?, updated_at = ? WHERE id = ?`),
		string(state), tx.db.timeArg(now), reason, tx.db.timeArg(now), id); err != nil {
		return nil, err
	}
	if err := tx.addEvent(ctx, id, now, actor, action, reason, nil); err != nil {
		return nil, err
	}
	return a, nil
}

// FindAssignments lists assignments by due date, then ID, one page at a time,
// each with its Ticket when it has one (servicenow type).
// Errors: CodeInvalid for a bad cursor, limit, scope or state.
func (db *DB) FindAssignments(ctx context.Context, f AssignmentFilter) ([]*steward.Assignment, string, error) {
	out, next, err := db.findAssignments(ctx, f)
	if err != nil {
		return nil, "", fmt.Errorf("find assignments: %w", err)
	}
	return out, next, nil
}

func (db *DB) findAssignments(ctx context.Context, f AssignmentFilter) ([]*steward.Assignment, string, error) {
	limit, err := pageLimit(f.Limit)
	if err != nil {
		return nil, "", err
	}
	after, hasAfter, err := decodeCursor[assignmentKey](cursorAssignment, f.Cursor)
	if err != nil {
		return nil, "", err
	}
	states := f.States
	if len(states) == 0 {
		states = []steward.AssignmentState{steward.AssignmentActive}
	}
	var args []any
	for _, s := range states {
		switch s {
		case steward.AssignmentActive, steward.AssignmentCompleted, steward.AssignmentRemoved:
		default:
			return nil, "", steward.Errorf(steward.CodeInvalid, "unknown assignment state %q", s)
		}
		args = append(args, string(s))
	}
	where := []string{"g.state IN (" + placeholders(len(states)) + ")"}
	if f.Owner != "" {
		where = append(where, "g.owner_norm = ?")
		args = append(args, strings.ToLower(strings.TrimSpace(f.Owner)))
	}
	if !f.OverdueAt.IsZero() {
		where = append(where, "g.due_date < ?")
		args = append(args, db.timeArg(f.OverdueAt))
	}
	if !f.DueBefore.IsZero() {
		where = append(where, "g.due_date < ?")
		args = append(args, db.timeArg(f.DueBefore))
	}
	cond, cargs, err := scopeRange("res.norm_id", f.Scope)
	if err != nil {
		return nil, "", err
	}
	if cond != "" {
		where = append(where, cond)
		args = append(args, cargs...)
	}
	if f.RecommendationKey != "" {
		where = append(where, "r.key = ?")
		args = append(args, f.RecommendationKey)
	}
	if f.ResourceID != "" {
		where = append(where, "res.norm_id = ?")
		args = append(args, steward.NormalizeResourceID(f.ResourceID))
	}
	if len(f.AssessmentIDs) > 0 {
		where = append(where, "g.assessment_id IN ("+placeholders(len(f.AssessmentIDs))+")")
		for _, id := range f.AssessmentIDs {
			args = append(args, id)
		}
	}
	if f.IntegrationID != 0 {
		where = append(where, "t.integration_id = ?")
		args = append(args, f.IntegrationID)
	}
	if f.TicketState != "" {
		if !validTicketState(f.TicketState) {
			return nil, "", steward.Errorf(steward.CodeInvalid, "unknown ticket state %q", f.TicketState)
		}
		where = append(where, "t.state = ?")
		args = append(args, string(f.TicketState))
	}
	if f.TicketStatus != "" {
		if !validTicketStatus(f.TicketStatus) {
			return nil, "", steward.Errorf(steward.CodeInvalid, "unknown ticket status %q (want pending, deferred, created, retrying or failed)", f.TicketStatus)
		}
		where = append(where, "t.status = ?")
		args = append(args, string(f.TicketStatus))
	}
	if hasAfter {
		where = append(where, "(g.due_date > ? OR (g.due_date = ? AND g.id > ?))")
		due := db.timeArg(time.UnixMicro(after.Due))
		args = append(args, due, due, after.ID)
	}
	q := assignmentSelect + " WHERE " + strings.Join(where, " AND ") + " ORDER BY g.due_date, g.id LIMIT ?"
	args = append(args, limit+1)
	rows, err := db.read.QueryContext(ctx, db.bind(q), args...)
	if err != nil {
		return nil, "", err
	}
	defer rows.Close()
	var out []*steward.Assignment
	for rows.Next() {
		a, err := scanAssignment(rows)
		if err != nil {
			return nil, "", err
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, "", err
	}
	if len(out) > limit {
		out = out[:limit]
		last := out[limit-1]
		return out, encodeCursor(cursorAssignment, assignmentKey{Due: last.DueDate.UnixMicro(), ID: last.ID}), nil
	}
	return out, "", nil
}

// FindAssignmentEvents returns an assignment's history, oldest first, or
// CodeNotFound if the assignment does not exist.
func (db *DB) FindAssignmentEvents(ctx context.Context, assignmentID int64) ([]*steward.AssignmentEvent, error) {
	var exists int
	if err := db.read.QueryRowContext(ctx, db.bind(`SELECT 1 FROM assignment WHERE id = ?`), assignmentID).Scan(&exists); isNoRows(err) {
		return nil, steward.Errorf(steward.CodeNotFound, "assignment %d not found", assignmentID)
	} else if err != nil {
		return nil, fmt.Errorf("find events of assignment %d: %w", assignmentID, err)
	}
	rows, err := db.read.QueryContext(ctx, db.bind(`SELECT id, assignment_id, at, actor, action, reason, changes
		FROM assignment_event WHERE assignment_id = ? ORDER BY id`), assignmentID)
	if err != nil {
		return nil, fmt.Errorf("find events of assignment %d: %w", assignmentID, err)
	}
	defer rows.Close()
	out := []*steward.AssignmentEvent{}
	for rows.Next() {
		e := new(steward.AssignmentEvent)
		var at dbTime
		var changes string
		if err := rows.Scan(&e.ID, &e.AssignmentID, &at, &e.Actor, &e.Action, &e.Reason, &changes); err != nil {
			return nil, fmt.Errorf("find events of assignment %d: %w", assignmentID, err)
		}
		e.At = at.T
		if changes != "" {
			if err := json.Unmarshal([]byte(changes), &e.Changes); err != nil {
				return nil, fmt.Errorf("decode changes of event %d: %w", e.ID, err)
			}
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find events of assignment %d: %w", assignmentID, err)
	}
	return out, nil
}

// FindActiveAssignmentIDsByIntegration returns up to limit IDs of the active
// assignments whose tickets (own or shared) belong to the integration, lowest first: the
// batches an integration delete ends.
func (tx *Tx) FindActiveAssignmentIDsByIntegration(ctx context.Context, integrationID int64, limit int) ([]int64, error) {
	if limit <= 0 {
		return nil, steward.Errorf(steward.CodeInvalid, "limit must be positive")
	}
	// Members of a ticket group share their leader's ticket.
	rows, err := tx.tx.QueryContext(ctx, tx.db.bind(`SELECT g.id FROM ticket t JOIN assignment g ON g.id = t.assignment_id
		WHERE t.integration_id = ? AND g.state = 'active'
		UNION SELECT g.id FROM ticket t JOIN ticket_group tg ON tg.leader_assignment_id = t.assignment_id
		JOIN assignment g ON g.ticket_group_id = tg.id
		WHERE t.integration_id = ? AND g.state = 'active' ORDER BY 1 LIMIT ?`), integrationID, integrationID, limit)
	if err != nil {
		return nil, fmt.Errorf("find active assignments of integration %d: %w", integrationID, err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("find active assignments of integration %d: %w", integrationID, err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find active assignments of integration %d: %w", integrationID, err)
	}
	return ids, nil
}

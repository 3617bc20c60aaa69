package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/stewardhq/steward"
)

// AuditFilter selects audit events. Zero fields do not filter.
type AuditFilter struct {
	IntegrationID int64
	AssignmentID  int64
	// ActionPrefix keeps actions starting with it, e.g. "ticket." or
	// "integration.updated".
	ActionPrefix string
	Cursor       string
	Limit        int
}

// InsertAudit appends an event to the audit log. It sets e.ID, and e.At to
// db.Now when zero. Details must not hold secrets: the log is shown to users.
func (tx *Tx) InsertAudit(ctx context.Context, e *steward.AuditEvent) error {
	if err := tx.insertAudit(ctx, e); err != nil {
		return fmt.Errorf("record audit event %s: %w", e.Action, mapError(err))
	}
	return nil
}

func (tx *Tx) insertAudit(ctx context.Context, e *steward.AuditEvent) error {
	if strings.TrimSpace(e.Action) == "" {
		return steward.Errorf(steward.CodeInvalid, "audit action is missing")
	}
	if e.At.IsZero() {
		e.At = tx.db.now()
	} else {
		e.At = storedTime(e.At)
	}
	var details string
	if len(e.Details) > 0 {
		b, err := json.Marshal(e.Details)
		if err != nil {
			return fmt.Errorf("encode details: %w", err)
		}
		details = string(b)
	}
	stmt, err := tx.stmt(ctx, `INSERT INTO audit_event (at, actor, action, integration_id, assignment_id, details)
		VALUES (?, ?, ?, ?, ?, ?) RETURNING id`)
	if err != nil {
		return err
	}
	return stmt.QueryRowContext(ctx, tx.db.timeArg(e.At), e.Actor, e.Action, e.IntegrationID, e.AssignmentID, details).Scan(&e.ID)
}

// FindAuditEvents lists audit events newest first, one page at a time.
// Details read back as decoded JSON (numbers as float64). Errors:
// CodeInvalid for a bad cursor or limit.
func (db *DB) FindAuditEvents(ctx context.Context, f AuditFilter) ([]*steward.AuditEvent, string, error) {
	out, next, err := db.findAuditEvents(ctx, f)
	if err != nil {
		return nil, "", fmt.Errorf("find audit events: %w", err)
	}
	return out, next, nil
}

func (db *DB) findAuditEvents(ctx context.Context, f AuditFilter) ([]*steward.AuditEvent, string, error) {
	limit, err := pageLimit(f.Limit)
	if err != nil {
		return nil, "", err
	}
	before, hasBefore, err := decodeCursor[int64](cursorAudit, f.Cursor)
	if err != nil {
		return nil, "", err
	}
	var where []string
	var args []any
	if f.IntegrationID != 0 {
		where = append(where, "integration_id = ?")
		args = append(args, f.IntegrationID)
	}
	if f.AssignmentID != 0 {
		where = append(where, "assignment_id = ?")
		args = append(args, f.AssignmentID)
	}
	if f.ActionPrefix != "" {
		// SUBSTR, not LIKE: LIKE is case-insensitive in SQLite and treats
		// _ (common in actions) as a wildcard.
		where = append(where, "SUBSTR(action, 1, ?) = ?")
		args = append(args, len(f.ActionPrefix), f.ActionPrefix)
	}
	if hasBefore {
		where = append(where, "id < ?")
		args = append(args, before)
	}
	q := `SELECT id, at, actor, action, integration_id, assignment_id, details FROM audit_event`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id DESC LIMIT ?"
	args = append(args, limit+1)
	rows, err := db.read.QueryContext(ctx, db.bind(q), args...)
	if err != nil {
		return nil, "", err
	}
	defer rows.Close()
	out := []*steward.AuditEvent{}
	for rows.Next() {
		e := new(steward.AuditEvent)
		var at dbTime
		var details string
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.IntegrationID, &e.AssignmentID, &details); err != nil {
			return nil, "", err
		}
		e.At = at.T
		if details != "" {
			if err := json.Unmarshal([]byte(details), &e.Details); err != nil {
				return nil, "", fmt.Errorf("decode details of audit event %d: %w", e.ID, err)
			}
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, "", err
	}
	if len(out) > limit {
		out = out[:limit]
		return out, encodeCursor(cursorAudit, out[limit-1].ID), nil
	}
	return out, "", nil
}

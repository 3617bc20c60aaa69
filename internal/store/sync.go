package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/stewardhq/steward"
)

// Audit actions of ticket synchronization (docs/sync.md).
const (
	AuditTicketSynced           = "ticket.synced"           // a remote change was applied
	AuditTicketSyncConflict     = "ticket.sync_conflict"    // both sides changed the owner
	AuditTicketDeletedInITSM    = "ticket.deleted_in_itsm"  // the record is gone
	AuditTicketClosedNotFixed   = "ticket.closed_not_fixed" // ended remotely, still unhealthy
	AuditTicketResolved         = "ticket.resolved"         // Steward resolved the record
	AuditTicketResolveRefused   = "ticket.resolve_refused"  // the ITSM kept the state
	AuditTicketOwnerPushed      = "ticket.owner_updated"    // Steward wrote assigned_to
	AuditTicketReopened         = "ticket.reopened"         // closed-not-fixed policy reopen
	AuditIntegrationSyncRequest = "integration.sync_requested"
)

// ReconcileReport is what one full reconcile found.
type ReconcileReport struct {
	// Checked counts linked tickets read back from the ITSM; Repaired
	// those whose stored state differed and was repaired; Missing those
	// the ITSM no longer has.
	Checked  int `json:"checked"`
	Repaired int `json:"repaired"`
	Missing  int `json:"missing"`
	// Repairs are short human lines, at most MaxReconcileRepairs.
	Repairs []string `json:"repairs,omitempty"`
}

// MaxReconcileRepairs caps ReconcileReport.Repairs.
const MaxReconcileRepairs = 50

// SyncState is an integration's synchronization bookkeeping. Nil times
// mean never.
type SyncState struct {
	IntegrationID int64
	// Watermarks maps each table to the newest sys_updated_on a completed
	// poll applied.
	Watermarks map[string]time.Time
	// AppliedThrough: every ITSM change made before it has been applied
	// (the start of the last successful poll).
	AppliedThrough         *time.Time
	LastPollAt             *time.Time
	LastPollSuccessAt      *time.Time
	LastReconcileAt        *time.Time
	LastReconcileSuccessAt *time.Time
	LastWebhookAt          *time.Time
	LastError              string
	LastReconcile          ReconcileReport
}

// FindSyncState returns an integration's sync state; an integration never
// synced has a zero state (no error).
func (db *DB) FindSyncState(ctx context.Context, integrationID int64) (*SyncState, error) {
	st := &SyncState{IntegrationID: integrationID, Watermarks: map[string]time.Time{}}
	var wm, rep string
	var through, poll, pollOK, rec, recOK, hook dbTime
	err := db.read.QueryRowContext(ctx, db.bind(`SELECT watermarks, applied_through, last_poll_at, last_poll_success_at,
		last_reconcile_at, last_reconcile_success_at, last_webhook_at, last_error, last_reconcile
		FROM sync_state WHERE integration_id = ?`), integrationID).
		Scan(&wm, &through, &poll, &pollOK, &rec, &recOK, &hook, &st.LastError, &rep)
	if isNoRows(err) {
		return st, nil
	} else if err != nil {
		return nil, fmt.Errorf("find sync state of integration %d: %w", integrationID, err)
	}
	var marks map[string]int64
	if err := json.Unmarshal([]byte(wm), &marks); err != nil {
		return nil, fmt.Errorf("decode watermarks of integration %d: %w", integrationID, err)
	}
	for table, us := range marks {
		st.Watermarks[table] = time.UnixMicro(us).UTC()
	}
	if err := json.Unmarshal([]byte(rep), &st.LastReconcile); err != nil {
		return nil, fmt.Errorf("decode reconcile report of integration %d: %w", integrationID, err)
	}
	st.AppliedThrough, st.LastPollAt, st.LastPollSuccessAt = through.ptr(), poll.ptr(), pollOK.ptr()
	st.LastReconcileAt, st.LastReconcileSuccessAt, st.LastWebhookAt = rec.ptr(), recOK.ptr(), hook.ptr()
	return st, nil
}

// ensureSyncState creates the integration's row when missing.
func (tx *Tx) ensureSyncState(ctx context.Context, integrationID int64) error {
	_, err := tx.tx.ExecContext(ctx, tx.db.bind(`INSERT INTO sync_state (integration_id) VALUES (?) ON CONFLICT (integration_id) DO NOTHING`), integrationID)
	return err
}

// RecordSyncStart records that a poll ("poll") or reconcile ("reconcile")
// of the integration started at at. Must not be called inside WithTx.
func (db *DB) RecordSyncStart(ctx context.Context, integrationID int64, kind string, at time.Time) error {
	col := ""
	switch kind {
	case "poll":
		col = "last_poll_at"
	case "reconcile":
		col = "last_reconcile_at"
	default:
		return steward.Errorf(steward.CodeInvalid, "unknown sync kind %q", kind)
	}
	err := db.WithTx(ctx, func(tx *Tx) error {
		if err := tx.ensureSyncState(ctx, integrationID); err != nil {
			return err
		}
		_, err := tx.tx.ExecContext(ctx, db.bind(`UPDATE sync_state SET `+col+` = ? WHERE integration_id = ?`), db.timeArg(storedTime(at)), integrationID)
		return err
	})
	if err != nil {
		return fmt.Errorf("record %s start of integration %d: %w", kind, integrationID, mapError(err))
	}
	return nil
}

// PollResult is the outcome of one poll, for RecordPollResult.
type PollResult struct {
	// Watermarks are the newest sys_updated_on applied per table; a stored
	// watermark never moves back.
	Watermarks map[string]time.Time
	// StartedAt is when the poll started; on success it becomes
	// AppliedThrough (if later).
	StartedAt time.Time
	// Err is the failure ("" on success).
	Err string
}

// RecordPollResult stores a poll's watermarks (even a failed poll keeps
// those of the records it applied) and outcome. Must not be called inside
// WithTx.
func (db *DB) RecordPollResult(ctx context.Context, integrationID int64, r PollResult) error {
	err := db.WithTx(ctx, func(tx *Tx) error {
		if err := tx.ensureSyncState(ctx, integrationID); err != nil {
			return err
		}
		var wm string
		// Locked (PostgreSQL): two polls finishing at once each merge into
		// what the other wrote, so a watermark never moves back.
		if err := tx.tx.QueryRowContext(ctx, db.bind(`SELECT watermarks FROM sync_state WHERE integration_id = ?`+db.forUpdate()), integrationID).Scan(&wm); err != nil {
			return err
		}
		marks := map[string]int64{}
		if err := json.Unmarshal([]byte(wm), &marks); err != nil {
			return fmt.Errorf("decode watermarks: %w", err)
		}
		for table, t := range r.Watermarks {
			if us := t.UnixMicro(); us > marks[table] {
				marks[table] = us
			}
		}
		b, err := json.Marshal(marks)
		if err != nil {
			return err
		}
		now := db.now()
		if r.Err != "" {
			_, err = tx.tx.ExecContext(ctx, db.bind(`UPDATE sync_state SET watermarks = ?, last_error = ? WHERE integration_id = ?`),
				string(b), r.Err, integrationID)
			return err
		}
		_, err = tx.tx.ExecContext(ctx, db.bind(`UPDATE sync_state SET watermarks = ?, last_error = '', last_poll_success_at = ?,
			applied_through = CASE WHEN applied_through IS NULL OR applied_through < ? THEN ? ELSE applied_through END
			WHERE integration_id = ?`),
			string(b), db.timeArg(now), db.timeArg(storedTime(r.StartedAt)), db.timeArg(storedTime(r.StartedAt)), integrationID)
		return err
	})
	if err != nil {
		return fmt.Errorf("record poll of integration %d: %w", integrationID, mapError(err))
	}
	return nil
}

// RecordReconcileResult stores a reconcile's report and outcome (errMsg ""
// on success). Must not be called inside WithTx.
func (db *DB) RecordReconcileResult(ctx context.Context, integrationID int64, rep ReconcileReport, errMsg string) error {
	if len(rep.Repairs) > MaxReconcileRepairs {
		rep.Repairs = rep.Repairs[:MaxReconcileRepairs]
	}
	b, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	err = db.WithTx(ctx, func(tx *Tx) error {
		if err := tx.ensureSyncState(ctx, integrationID); err != nil {
			return err
		}
		if errMsg != "" {
			_, err := tx.tx.ExecContext(ctx, db.bind(`UPDATE sync_state SET last_reconcile = ?, last_error = ? WHERE integration_id = ?`),
				string(b), errMsg, integrationID)
			return err
		}
		_, err := tx.tx.ExecContext(ctx, db.bind(`UPDATE sync_state SET last_reconcile = ?, last_error = '', last_reconcile_success_at = ?
			WHERE integration_id = ?`), string(b), db.timeArg(db.now()), integrationID)
		return err
	})
	if err != nil {
		return fmt.Errorf("record reconcile of integration %d: %w", integrationID, mapError(err))
	}
	return nil
}

// RecordWebhookAt stores when the integration's last webhook arrived. Must
// not be called inside WithTx.
func (db *DB) RecordWebhookAt(ctx context.Context, integrationID int64, at time.Time) error {
	err := db.WithTx(ctx, func(tx *Tx) error {
		if err := tx.ensureSyncState(ctx, integrationID); err != nil {
			return err
		}
		// Several processes record webhooks of one integration: a later
		// time is never replaced by an earlier one that commits after it.
		t := db.timeArg(storedTime(at))
		_, err := tx.tx.ExecContext(ctx, db.bind(`UPDATE sync_state SET last_webhook_at = ?
			WHERE integration_id = ? AND (last_webhook_at IS NULL OR last_webhook_at < ?)`),
			t, integrationID, t)
		return err
	})
	if err != nil {
		return fmt.Errorf("record webhook of integration %d: %w", integrationID, mapError(err))
	}
	return nil
}

// Version orders of a remote view against the stored ticket, returned by
// Tx.UpdateTicketRemote.
const (
	RemoteStale = -1 // older than stored: ignored
	RemoteSame  = 0  // the stored version: only LastSyncedAt moved
	RemoteNewer = 1  // applied
)

// UpdateTicketRemote is DB.UpdateTicketRemote inside a transaction, for
// callers that apply the consequences (owner, assignment end) in the same
// transaction. It reports the view's order against the stored version.
// A newer view also clears a deleted_in_itsm flag: the record exists.
func (tx *Tx) UpdateTicketRemote(ctx context.Context, assignmentID int64, remote *steward.Ticket) (int, error) {
	order, err := tx.updateTicketRemoteOrder(ctx, assignmentID, remote)
	if err != nil {
		return 0, fmt.Errorf("update ticket for assignment %d from the ITSM: %w", assignmentID, mapError(err))
	}
	return order, nil
}

func (tx *Tx) updateTicketRemoteOrder(ctx context.Context, assignmentID int64, remote *steward.Ticket) (int, error) {
	if remote == nil {
		return 0, steward.Errorf(steward.CodeInvalid, "remote ticket is missing")
	}
	t, err := tx.FindTicketByAssignment(ctx, assignmentID)
	if err != nil {
		return 0, err
	}
	order := cmpVersion(remote.ModCount, storedTimePtr(remote.RemoteUpdatedAt), t.ModCount, t.RemoteUpdatedAt)
	if _, err := tx.updateTicketRemote(ctx, assignmentID, remote); err != nil {
		return 0, err
	}
	if order == RemoteNewer && t.Flag == steward.TicketFlagDeleted {
		if _, err := tx.tx.ExecContext(ctx, tx.db.bind(`UPDATE ticket SET flag = '' WHERE assignment_id = ?`), assignmentID); err != nil {
			return 0, err
		}
	}
	return order, nil
}

// TicketSyncUpdate changes a ticket's sync fields; nil fields stay.
type TicketSyncUpdate struct {
	Flag       *steward.TicketFlag
	EndedState *string
	SyncError  *string
	// RemoteEndedAt, when set, also starts watching for "closed, not
	// fixed" (cleared by CheckClosedNotFixed).
	RemoteEndedAt *time.Time
	// StopWatching stops the closed-not-fixed watch.
	StopWatching bool
}

// SetTicketSync applies upd to an assignment's ticket. Errors:
// CodeNotFound.
func (tx *Tx) SetTicketSync(ctx context.Context, assignmentID int64, upd TicketSyncUpdate) error {
	var sets []string
	var args []any
	if upd.Flag != nil {
		sets, args = append(sets, "flag = ?"), append(args, string(*upd.Flag))
	}
	if upd.EndedState != nil {
		sets, args = append(sets, "ended_state = ?"), append(args, *upd.EndedState)
	}
	if upd.SyncError != nil {
		sets, args = append(sets, "sync_error = ?"), append(args, *upd.SyncError)
	}
	if upd.RemoteEndedAt != nil {
		sets, args = append(sets, "remote_ended_at = ?", "cnf_watch = 1"), append(args, tx.db.timeArg(storedTime(*upd.RemoteEndedAt)))
	}
	if upd.StopWatching {
		sets = append(sets, "cnf_watch = 0")
	}
	if len(sets) == 0 {
		return nil
	}
	sets, args = append(sets, "updated_at = ?"), append(args, tx.db.timeArg(tx.db.now()), assignmentID)
	res, err := tx.tx.ExecContext(ctx, tx.db.bind(`UPDATE ticket SET `+strings.Join(sets, ", ")+` WHERE assignment_id = ?`), args...)
	if err != nil {
		return fmt.Errorf("update sync fields of ticket for assignment %d: %w", assignmentID, mapError(err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return steward.Errorf(steward.CodeNotFound, "assignment %d has no ticket", assignmentID)
	}
	return nil
}

// ReopenAssignment makes a completed assignment active again (its ticket
// was reopened because the resource is still unhealthy) and records an
// "updated" event with the state change. Errors: CodeNotFound;
// CodeConflict when it is not completed or its assessment already has
// another active assignment.
func (tx *Tx) ReopenAssignment(ctx context.Context, id int64, actor, reason string) (*steward.Assignment, error) {
	a, err := tx.FindAssignmentByID(ctx, id)
	if err != nil {
		return nil, err
	}
	if a.State != steward.AssignmentCompleted {
		return nil, steward.Errorf(steward.CodeConflict, "assignment %d is %s; only completed assignments can be reopened", id, a.State)
	}
	now := tx.db.now()
	if _, err := tx.tx.ExecContext(ctx, tx.db.bind(`UPDATE assignment SET state = 'active', ended_at = NULL, end_reason = '', updated_at = ? WHERE id = ?`),
		tx.db.timeArg(now), id); err != nil {
		return nil, fmt.Errorf("reopen assignment %d: %w", id, mapError(err))
	}
	if err := tx.addEvent(ctx, id, now, actor, steward.ActionUpdated, reason,
		map[string]steward.Change{"state": {From: string(a.State), To: string(steward.AssignmentActive)}}); err != nil {
		return nil, err
	}
	a.State, a.EndedAt, a.EndReason, a.UpdatedAt = steward.AssignmentActive, nil, "", now
	return a, nil
}

// linkedWhere selects the tickets sync verifies: created in the ITSM, not
// known deleted, and still open work on either side.
const linkedWhere = `t.integration_id = ? AND t.status = 'created' AND t.sys_id <> '' AND t.flag <> 'deleted_in_itsm'
	AND (g.state = 'active' OR t.state NOT IN ('Resolved', 'Closed', 'Canceled'))`

// FindLinkedTickets returns up to limit of the integration's linked tickets
// (created, not deleted in the ITSM, assignment active or ticket not ended)
// with assignment IDs above after, in assignment ID order (keyset paging
// for the reconcile).
func (db *DB) FindLinkedTickets(ctx context.Context, integrationID, after int64, limit int) ([]*steward.Ticket, error) {
	rows, err := db.read.QueryContext(ctx, db.bind(`SELECT `+ticketColumns+` FROM ticket t JOIN assignment g ON g.id = t.assignment_id
		WHERE `+linkedWhere+` AND t.assignment_id > ? ORDER BY t.assignment_id LIMIT ?`), integrationID, after, limit)
	if err != nil {
		return nil, fmt.Errorf("find linked tickets of integration %d: %w", integrationID, err)
	}
	defer rows.Close()
	var out []*steward.Ticket
	for rows.Next() {
		t, err := scanTicket(rows)
		if err != nil {
			return nil, fmt.Errorf("find linked tickets of integration %d: %w", integrationID, err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find linked tickets of integration %d: %w", integrationID, err)
	}
	return out, nil
}

// CountLinkedTickets counts what FindLinkedTickets pages through.
func (db *DB) CountLinkedTickets(ctx context.Context, integrationID int64) (int, error) {
	var n int
	err := db.read.QueryRowContext(ctx, db.bind(`SELECT COUNT(*) FROM ticket t JOIN assignment g ON g.id = t.assignment_id WHERE `+linkedWhere),
		integrationID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count linked tickets of integration %d: %w", integrationID, err)
	}
	return n, nil
}

// TicketTables returns which of candidates hold at least one of the
// integration's tickets (one index probe each).
func (db *DB) TicketTables(ctx context.Context, integrationID int64, candidates []string) ([]string, error) {
	var out []string
	for _, table := range candidates {
		var one int
		err := db.read.QueryRowContext(ctx, db.bind(`SELECT 1 FROM ticket WHERE integration_id = ? AND table_name = ? AND sys_id <> '' LIMIT 1`),
			integrationID, table).Scan(&one)
		if isNoRows(err) {
			continue
		} else if err != nil {
			return nil, fmt.Errorf("find ticket tables of integration %d: %w", integrationID, err)
		}
		out = append(out, table)
	}
	return out, nil
}

// TicketsToResolve returns which of the given (just completed) assignments
// have a ServiceNow ticket Steward should resolve: not failed, not ended in
// the ITSM, not deleted there. A member of a ticket group is among them
// only when no member of its group is active any more: the shared ticket is
// resolved by the last fix.
func (tx *Tx) TicketsToResolve(ctx context.Context, assignmentIDs []int64) ([]int64, error) {
	out, err := queryInIDs(ctx, tx, `SELECT g.id FROM assignment g
		LEFT JOIN ticket_group tg ON tg.id = g.ticket_group_id
		JOIN ticket t ON t.assignment_id = COALESCE(tg.leader_assignment_id, g.id)
		WHERE g.id IN (%s)
		AND t.status <> 'failed' AND t.state NOT IN ('Resolved', 'Closed', 'Canceled') AND t.flag <> 'deleted_in_itsm'
		AND (g.ticket_group_id IS NULL OR NOT EXISTS
			(SELECT 1 FROM assignment m WHERE m.ticket_group_id = g.ticket_group_id AND m.state = 'active'))
		ORDER BY g.id`, nil, assignmentIDs)
	if err != nil {
		return nil, fmt.Errorf("find tickets to resolve: %w", err)
	}
	return out, nil
}

// ClosedNotFixed is a ticket CheckClosedNotFixed flagged.
type ClosedNotFixed struct {
	AssignmentID  int64
	IntegrationID int64
	// SeenAt is the scan that still found the resource unhealthy.
	SeenAt time.Time
}

// CheckClosedNotFixed decides the watched tickets (ended in the ITSM while
// the resource was unhealthy): a resource that turned Healthy (or changed
// status since) or an assessment that got a new active assignment ends the
// watch; a resource still Unhealthy and seen by a scan after the ticket
// ended flags the ticket closed_not_fixed (audited) and is returned. Others
// stay watched. Ingest calls it in the transaction of every chunk.
func (tx *Tx) CheckClosedNotFixed(ctx context.Context) ([]ClosedNotFixed, error) {
	rows, err := tx.tx.QueryContext(ctx, tx.db.bind(`SELECT t.assignment_id, t.integration_id, t.remote_ended_at, a.status,
		a.status_changed_at, a.last_seen,
		EXISTS (SELECT 1 FROM assignment o WHERE o.assessment_id = g.assessment_id AND o.state = 'active')
		FROM ticket t JOIN assignment g ON g.id = t.assignment_id JOIN assessment a ON a.id = g.assessment_id
		WHERE t.cnf_watch = 1 ORDER BY t.assignment_id`+tx.db.forUpdateOf("t")))
	if err != nil {
		return nil, fmt.Errorf("check closed-not-fixed tickets: %w", err)
	}
	type watched struct {
		id, integration int64
		ended           dbTime
		status          steward.AssessmentStatus
		changed, seen   dbTime
		active          bool
	}
	var all []watched
	for rows.Next() {
		var w watched
		if err := rows.Scan(&w.id, &w.integration, &w.ended, &w.status, &w.changed, &w.seen, &w.active); err != nil {
			rows.Close()
			return nil, fmt.Errorf("check closed-not-fixed tickets: %w", err)
		}
		all = append(all, w)
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("check closed-not-fixed tickets: %w", err)
	}
	var out []ClosedNotFixed
	now := tx.db.now()
	for _, w := range all {
		// ITSM update times have one-second resolution: the ticket ended
		// somewhere in [ended, ended+1s). Only what is surely later counts.
		endedBy := w.ended.T.Add(time.Second)
		var flag bool
		switch {
		case !w.ended.Valid, w.status != steward.StatusUnhealthy, !w.changed.T.Before(endedBy), w.active:
		case !w.seen.T.Before(endedBy):
			flag = true
		default:
			continue // no scan since the ticket ended: keep watching
		}
		set := `cnf_watch = 0`
		if flag {
			set = `cnf_watch = 0, flag = 'closed_not_fixed', updated_at = ?`
		}
		args := []any{w.id}
		if flag {
			args = []any{tx.db.timeArg(now), w.id}
		}
		if _, err := tx.tx.ExecContext(ctx, tx.db.bind(`UPDATE ticket SET `+set+` WHERE assignment_id = ?`), args...); err != nil {
			return nil, fmt.Errorf("check closed-not-fixed ticket of assignment %d: %w", w.id, err)
		}
		if !flag {
			continue
		}
		if err := tx.InsertAudit(ctx, &steward.AuditEvent{At: now, Actor: ActorSystem, Action: AuditTicketClosedNotFixed,
			IntegrationID: w.integration, AssignmentID: w.id,
			Details: map[string]any{"ticket_ended_at": w.ended.T.Format(time.RFC3339), "scan_at": w.seen.T.Format(time.RFC3339)}}); err != nil {
			return nil, err
		}
		out = append(out, ClosedNotFixed{AssignmentID: w.id, IntegrationID: w.integration, SeenAt: w.seen.T})
	}
	return out, nil
}

// TouchTicketsSynced sets LastSyncedAt of the given assignments' tickets
// to now in one transaction (a reconcile found them at the stored
// version). Must not be called inside WithTx.
func (db *DB) TouchTicketsSynced(ctx context.Context, assignmentIDs []int64) error {
	if len(assignmentIDs) == 0 {
		return nil
	}
	err := db.WithTx(ctx, func(tx *Tx) error {
		return execIn(ctx, tx, `UPDATE ticket SET last_synced_at = ? WHERE assignment_id IN (%s)`, []any{db.timeArg(db.now())}, assignmentIDs)
	})
	if err != nil {
		return fmt.Errorf("touch synced tickets: %w", mapError(err))
	}
	return nil
}

package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/stewardhq/steward"
)

// PendingRefresh is a record a webhook announced as changed, waiting in
// sync_pending to be read back through the Table API and applied
// (docs/sync.md). One row per record: later announcements raise ModCount.
type PendingRefresh struct {
	IntegrationID int64
	Table         string
	SysID         string
	// ModCount is the highest sys_mod_count announced.
	ModCount int
	// Deleted: a delete was announced; the row is never skipped as
	// already applied.
	Deleted bool
	// Attempts counts failed reads since the row was last announced anew.
	Attempts   int
	ReceivedAt time.Time
}

// QueuePendingRefresh records an announced change durably. A record
// already pending keeps the highest sys_mod_count and a delete; a newer
// announcement makes it due at once (it drops a failed read's backoff and
// a claim on PostgreSQL, so a drain that read the older version cannot
// hold it back).
func (tx *Tx) QueuePendingRefresh(ctx context.Context, p PendingRefresh) error {
	if p.Table == "" || p.SysID == "" {
		return steward.Errorf(steward.CodeInvalid, "pending refresh without table or sys_id")
	}
	now := tx.db.clockMicros()
	q := `INSERT INTO sync_pending (integration_id, table_name, sys_id, mod_count, deleted, received_at)
		VALUES (?, ?, ?, ?, ?, ` + now + `)
		ON CONFLICT (integration_id, table_name, sys_id) DO UPDATE SET
			not_before = CASE WHEN excluded.mod_count > sync_pending.mod_count OR excluded.deleted > sync_pending.deleted
				THEN 0 ELSE sync_pending.not_before END,
			attempts = CASE WHEN excluded.mod_count > sync_pending.mod_count OR excluded.deleted > sync_pending.deleted
				THEN 0 ELSE sync_pending.attempts END,
			mod_count = CASE WHEN excluded.mod_count > sync_pending.mod_count THEN excluded.mod_count ELSE sync_pending.mod_count END,
			deleted = CASE WHEN excluded.deleted > sync_pending.deleted THEN excluded.deleted ELSE sync_pending.deleted END`
	stmt, err := tx.stmt(ctx, q)
	if err == nil {
		_, err = stmt.ExecContext(ctx, p.IntegrationID, p.Table, p.SysID, p.ModCount, boolArg(p.Deleted))
	}
	if err != nil {
		return fmt.Errorf("queue refresh of %s %s: %w", p.Table, p.SysID, mapError(err))
	}
	return nil
}

// PendingCount is how many records of an integration are pending, and how
// many of them are due now (not backing off, not claimed).
type PendingCount struct {
	IntegrationID int64
	Pending, Due  int
}

// PendingCounts returns, per integration with pending records, how many
// there are and how many are due, by the database's clock.
func (db *DB) PendingCounts(ctx context.Context) ([]PendingCount, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT integration_id, COUNT(*),
		SUM(CASE WHEN not_before <= `+db.clockMicros()+` THEN 1 ELSE 0 END)
		FROM sync_pending GROUP BY integration_id ORDER BY integration_id`)
	if err != nil {
		return nil, fmt.Errorf("count pending refreshes: %w", mapError(err))
	}
	defer rows.Close()
	var out []PendingCount
	for rows.Next() {
		var c PendingCount
		if err := rows.Scan(&c.IntegrationID, &c.Pending, &c.Due); err != nil {
			return nil, fmt.Errorf("count pending refreshes: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count pending refreshes: %w", err)
	}
	return out, nil
}

// TakePendingRefreshes returns up to limit due records of an integration,
// oldest announcement first.
//
// SQLite: a read; one process owns the database and drains each
// integration on one goroutine. PostgreSQL: several processes drain, so the
// rows are claimed for claim (not_before moves on, FOR UPDATE SKIP LOCKED
// keeps two claims apart); a drain deletes what it applied, and a claim of
// a process that died lapses after claim.
func (db *DB) TakePendingRefreshes(ctx context.Context, integrationID int64, limit int, claim time.Duration) ([]PendingRefresh, error) {
	if limit < 1 {
		limit = 1
	}
	cols := `integration_id, table_name, sys_id, mod_count, deleted, attempts, received_at`
	var q string
	var args []any
	now := db.clockMicros()
	if db.Postgres() {
		q = `UPDATE sync_pending SET not_before = ` + now + ` + ?
			WHERE (integration_id, table_name, sys_id) IN (
				SELECT integration_id, table_name, sys_id FROM sync_pending
				WHERE integration_id = ? AND not_before <= ` + now + `
				ORDER BY received_at LIMIT ? FOR UPDATE SKIP LOCKED)
			RETURNING ` + cols
		args = []any{claim.Microseconds(), integrationID, limit}
	} else {
		q = `SELECT ` + cols + ` FROM sync_pending WHERE integration_id = ? AND not_before <= ` + now + `
			ORDER BY received_at LIMIT ?`
		args = []any{integrationID, limit}
	}
	var (
		out  []PendingRefresh
		qerr error
	)
	scan := func(rows interface {
		Next() bool
		Scan(...any) error
		Err() error
	}) error {
		for rows.Next() {
			var p PendingRefresh
			var deleted int
			var at dbTime
			if err := rows.Scan(&p.IntegrationID, &p.Table, &p.SysID, &p.ModCount, &deleted, &p.Attempts, &at); err != nil {
				return err
			}
			p.Deleted, p.ReceivedAt = deleted == 1, at.T
			out = append(out, p)
		}
		return rows.Err()
	}
	if db.Postgres() {
		rows, err := db.write.QueryContext(ctx, db.bind(q), args...)
		if err != nil {
			return nil, fmt.Errorf("claim pending refreshes of integration %d: %w", integrationID, mapError(err))
		}
		qerr = scan(rows)
		rows.Close()
	} else {
		rows, err := db.read.QueryContext(ctx, q, args...)
		if err != nil {
			return nil, fmt.Errorf("read pending refreshes of integration %d: %w", integrationID, mapError(err))
		}
		qerr = scan(rows)
		rows.Close()
	}
	if qerr != nil {
		return nil, fmt.Errorf("take pending refreshes of integration %d: %w", integrationID, mapError(qerr))
	}
	// RETURNING keeps no order.
	slices.SortStableFunc(out, func(a, b PendingRefresh) int { return a.ReceivedAt.Compare(b.ReceivedAt) })
	return out, nil
}

// DeletePendingRefresh removes a record's pending row if the version read
// covers it (its sys_mod_count is at most through): an announcement of a
// newer version that arrived meanwhile stays pending.
func (tx *Tx) DeletePendingRefresh(ctx context.Context, integrationID int64, table, sysID string, through int) error {
	stmt, err := tx.stmt(ctx, `DELETE FROM sync_pending WHERE integration_id = ? AND table_name = ? AND sys_id = ? AND mod_count <= ?`)
	if err == nil {
		_, err = stmt.ExecContext(ctx, integrationID, table, sysID, through)
	}
	if err != nil {
		return fmt.Errorf("delete pending refresh of %s %s: %w", table, sysID, mapError(err))
	}
	return nil
}

// DeferPendingRefreshes puts records whose read or apply failed back for
// delay and counts the attempt. A record announced anew since it was taken
// (a higher sys_mod_count) is left due.
func (db *DB) DeferPendingRefreshes(ctx context.Context, refs []PendingRefresh, delay time.Duration) error {
	if len(refs) == 0 {
		return nil
	}
	err := db.WithTx(ctx, func(tx *Tx) error {
		stmt, err := tx.stmt(ctx, `UPDATE sync_pending SET not_before = `+db.clockMicros()+` + ?, attempts = attempts + 1
			WHERE integration_id = ? AND table_name = ? AND sys_id = ? AND mod_count <= ?`)
		if err != nil {
			return err
		}
		for _, r := range refs {
			if _, err := stmt.ExecContext(ctx, delay.Microseconds(), r.IntegrationID, r.Table, r.SysID, r.ModCount); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("defer pending refreshes: %w", mapError(err))
	}
	return nil
}

// DeletePendingRefreshes drops every pending row of an integration (one
// that is being deleted: nothing of it is applied any more).
func (db *DB) DeletePendingRefreshes(ctx context.Context, integrationID int64) error {
	if _, err := db.write.ExecContext(ctx, db.bind(`DELETE FROM sync_pending WHERE integration_id = ?`), integrationID); err != nil {
		return fmt.Errorf("delete pending refreshes of integration %d: %w", integrationID, mapError(err))
	}
	return nil
}

// FindTicketsBySysIDs returns the integration's tickets with these
// sys_ids, keyed by sys_id (the latest assignment's where several share
// one, as FindTicketBySysID). One query per 500 sys_ids, on the reader.
func (db *DB) FindTicketsBySysIDs(ctx context.Context, integrationID int64, sysIDs []string) (map[string]*steward.Ticket, error) {
	out := make(map[string]*steward.Ticket, len(sysIDs))
	for chunk := range slices.Chunk(sysIDs, 500) {
		args := make([]any, 0, len(chunk)+1)
		args = append(args, integrationID)
		for _, id := range chunk {
			args = append(args, id)
		}
		q := ticketSelect + ` WHERE t.integration_id = ? AND t.sys_id IN (?` + strings.Repeat(", ?", len(chunk)-1) + `)
			ORDER BY t.assignment_id`
		rows, err := db.read.QueryContext(ctx, db.bind(q), args...)
		if err != nil {
			return nil, fmt.Errorf("find tickets by sys_id: %w", mapError(err))
		}
		for rows.Next() {
			t, err := scanTicket(rows)
			if err != nil {
				rows.Close()
				return nil, fmt.Errorf("find tickets by sys_id: %w", err)
			}
			out[t.SysID] = t // ascending assignment ID: the latest wins
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("find tickets by sys_id: %w", err)
		}
	}
	return out, nil
}

// RecordSyncError sets an integration's last sync error to msg; an empty
// msg clears the error only if it starts with prefix (a path that recovered
// clears its own error, never another's).
func (db *DB) RecordSyncError(ctx context.Context, integrationID int64, prefix, msg string) error {
	err := db.WithTx(ctx, func(tx *Tx) error {
		if err := tx.ensureSyncState(ctx, integrationID); err != nil {
			return err
		}
		if msg != "" {
			_, err := tx.tx.ExecContext(ctx, db.bind(`UPDATE sync_state SET last_error = ? WHERE integration_id = ?`), msg, integrationID)
			return err
		}
		_, err := tx.tx.ExecContext(ctx, db.bind(`UPDATE sync_state SET last_error = '' WHERE integration_id = ? AND last_error LIKE ?`),
			integrationID, prefix+"%")
		return err
	})
	if err != nil {
		return fmt.Errorf("record sync error of integration %d: %w", integrationID, mapError(err))
	}
	return nil
}

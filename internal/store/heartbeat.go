package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/stewardhq/steward"
)

// Process is one steward serve process as the process table records it.
type Process struct {
	// ClientID is the process's River client ID: the name River writes into
	// the attempted_by of every job the process picks up.
	ClientID    string
	Host        string
	PID         int
	StartedAt   time.Time
	HeartbeatAt time.Time
}

// ProcessRetention is how long the record of a process that stopped
// renewing its heartbeat is kept, for operators, before the job leader
// deletes it. It is far longer than River's stuck-job rescue (15 minutes),
// so a job a silent process left running is retried before its record
// goes.
const ProcessRetention = 24 * time.Hour

// Heartbeat records that the process p.ClientID is alive, registering it
// on its first call (p's Host, PID and the current time as its start). A
// process renews it every few seconds while it runs; a record deleted in
// the meantime (a process silent for longer than ProcessRetention) is
// created again.
func (db *DB) Heartbeat(ctx context.Context, p Process) error {
	// The database's clock (clockMicros): processes on hosts whose clocks
	// disagree still compare heartbeats on one clock.
	now := db.clockMicros()
	_, err := db.write.ExecContext(ctx, db.bind(`INSERT INTO process (client_id, host, pid, started_at, heartbeat_at)
		VALUES (?, ?, ?, `+now+`, `+now+`)
		ON CONFLICT (client_id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at`), p.ClientID, p.Host, p.PID)
	if err != nil {
		return fmt.Errorf("record heartbeat: %w", mapError(err))
	}
	return nil
}

// EndProcess deletes the record of a process that stops cleanly: its jobs
// have finished or been handed back to River, so nothing of it is left to
// rescue.
func (db *DB) EndProcess(ctx context.Context, clientID string) error {
	if _, err := db.write.ExecContext(ctx, db.bind(`DELETE FROM process WHERE client_id = ?`), clientID); err != nil {
		return fmt.Errorf("end process record: %w", mapError(err))
	}
	return nil
}

// Processes lists the recorded processes, the most recently started
// first.
func (db *DB) Processes(ctx context.Context) ([]Process, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT client_id, host, pid, started_at, heartbeat_at FROM process ORDER BY started_at DESC, id DESC`)
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", mapError(err))
	}
	return scanProcesses(rows)
}

// scanProcesses reads rows of client_id, host, pid, started_at and
// heartbeat_at, and closes them.
func scanProcesses(rows *sql.Rows) ([]Process, error) {
	defer rows.Close()
	var out []Process
	for rows.Next() {
		var p Process
		var started, beat int64
		if err := rows.Scan(&p.ClientID, &p.Host, &p.PID, &started, &beat); err != nil {
			return nil, fmt.Errorf("list processes: %w", err)
		}
		p.StartedAt, p.HeartbeatAt = time.UnixMicro(started).UTC(), time.UnixMicro(beat).UTC()
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list processes: %w", mapError(err))
	}
	return out, nil
}

// RescueJobsOfSilentProcesses makes the jobs marked running by processes
// whose heartbeat is older than staleAfter available again, and returns
// how many, when the River client clientID is the job leader; otherwise it
// does nothing. It also deletes the records of processes silent for longer
// than ProcessRetention.
//
// This is PostgreSQL's rescue: several live processes share the database,
// so a job running under another client is not an orphan unless that
// client has stopped renewing its heartbeat. Only a client that has a
// record can be judged silent; the jobs of one that never registered (a
// process of an older Steward during a rolling upgrade) are left to
// River's own stuck-job rescuer. Every job is idempotent (tickets are
// looked up by correlation ID before a retried create), so a process that
// was only slow, not dead, costs a repeated run, never a duplicate. With
// SQLite it does nothing: RescueOrphanedJobs is SQLite's rescue.
func (db *DB) RescueJobsOfSilentProcesses(ctx context.Context, clientID string, staleAfter time.Duration) (int, error) {
	if db.dialect != dialectPostgres {
		return 0, nil
	}
	var rescued int
	err := db.WithTx(ctx, func(tx *Tx) error {
		// The leader check is part of the statement: leadership can move
		// between a separate check and the update.
		res, err := tx.tx.ExecContext(ctx, `UPDATE river_job SET state = 'available'
			WHERE state = 'running'
			AND EXISTS (SELECT 1 FROM river_leader WHERE leader_id = $1 AND expires_at > now())
			AND attempted_by[array_length(attempted_by, 1)] IN (
				SELECT client_id FROM process
				WHERE heartbeat_at < `+postgresClockMicros+` - $2 AND client_id <> $1)`,
			clientID, staleAfter.Microseconds())
		if err != nil {
			return fmt.Errorf("rescue jobs of silent processes: %w", mapError(err))
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("rescue jobs of silent processes: %w", err)
		}
		rescued = int(n)
		_, err = tx.tx.ExecContext(ctx, `DELETE FROM process
			WHERE heartbeat_at < `+postgresClockMicros+` - $2
			AND EXISTS (SELECT 1 FROM river_leader WHERE leader_id = $1 AND expires_at > now())`,
			clientID, ProcessRetention.Microseconds())
		if err != nil {
			return fmt.Errorf("delete records of long-gone processes: %w", mapError(err))
		}
		return nil
	})
	return rescued, err
}

// LiveProcesses lists the steward serve processes whose heartbeat in the
// PostgreSQL database at url is younger than within, without migrating
// anything (a schema from before the process table has none to list). On
// SQLite it lists nothing: the file lock already keeps a second process out.
// `steward migrate` refuses to change a schema such processes are using.
func LiveProcesses(ctx context.Context, url string, within time.Duration) ([]Process, error) {
	if !IsPostgresURL(url) {
		return nil, nil
	}
	cfg, _, err := parsePostgresURL(url)
	if err != nil {
		return nil, err
	}
	conn := stdlib.OpenDB(*cfg)
	defer conn.Close()
	var exists bool
	if err := conn.QueryRowContext(ctx, `SELECT to_regclass('process') IS NOT NULL`).Scan(&exists); err != nil {
		return nil, steward.WrapError(steward.CodeUnavailable, err, "open database %s", RedactURL(url))
	}
	if !exists {
		return nil, nil
	}
	rows, err := conn.QueryContext(ctx, `SELECT client_id, host, pid, started_at, heartbeat_at FROM process
		WHERE heartbeat_at > `+postgresClockMicros+` - $1
		ORDER BY started_at, id`, within.Microseconds())
	if err != nil {
		return nil, fmt.Errorf("list live processes: %w", mapError(err))
	}
	return scanProcesses(rows)
}

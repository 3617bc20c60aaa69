package store

import (
	"context"
	"fmt"
)

// River keeps its jobs in river_job and its leader lease in river_leader
// (River's migrations). These two queries read and write them directly
// because River has no API for rescuing a job that is still marked
// running; they touch only the columns River documents in its schema. The
// rescue is SQLite's only (json_extract); on PostgreSQL it does nothing.

// IsJobLeader reports whether the River client with clientID holds the
// leader lease.
func (db *DB) IsJobLeader(ctx context.Context, clientID string) (bool, error) {
	// The lease's expiry is compared on the database's clock; riversqlite
	// stores it as SQLite datetime text, River's PostgreSQL drivers as
	// timestamptz.
	q := `SELECT count(*) FROM river_leader WHERE leader_id = ? AND expires_at >= datetime('now', 'subsec')`
	if db.dialect == dialectPostgres {
		q = `SELECT count(*) FROM river_leader WHERE leader_id = $1 AND expires_at >= now()`
	}
	var n int
	err := db.read.QueryRowContext(ctx, q, clientID).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("read job leader: %w", err)
	}
	return n > 0, nil
}

// RescueOrphanedJobs makes jobs that are marked running but were last
// picked up by another client available again, and returns how many. A
// Steward process that crashed leaves its jobs running; River's own rescuer
// waits RescueStuckJobsAfter (many minutes) before retrying them. With
// SQLite one serve process owns the database, so once this process's client
// is the leader, which a dead process's lease no longer blocks, any job
// running under another client ID is an orphan. Every job is idempotent
// (tickets are looked up by correlation ID before a retried create), so a
// mistaken rescue costs a repeated run, never a duplicate.
func (db *DB) RescueOrphanedJobs(ctx context.Context, clientID string) (int, error) {
	if db.dialect != dialectSQLite {
		return 0, nil // several processes share PostgreSQL: River's rescuer decides there
	}
	res, err := db.write.ExecContext(ctx, `UPDATE river_job SET state = 'available'
		WHERE state = 'running'
		AND coalesce(json_extract(json(attempted_by), '$[#-1]'), '') <> ?`, clientID)
	if err != nil {
		return 0, fmt.Errorf("rescue orphaned jobs: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("rescue orphaned jobs: %w", err)
	}
	return int(n), nil
}

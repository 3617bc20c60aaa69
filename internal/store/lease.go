package store

import (
	"context"
	"fmt"
	"time"

	"github.com/stewardhq/steward"
)

// The kinds of sync run a lease guards.
const (
	SyncLeasePoll      = "poll"
	SyncLeaseReconcile = "reconcile"
)

// SyncLease is a running poll or reconcile of an integration, held by one
// process: its progress as the holder last wrote it.
type SyncLease struct {
	IntegrationID int64
	Kind          string // SyncLeasePoll or SyncLeaseReconcile
	Holder        string
	StartedAt     time.Time
	ExpiresAt     time.Time
	Done, Total   int
}

// AcquireSyncLease takes the lease of one kind of sync run of an
// integration for holder (a value unique to this run) for ttl, unless
// another holder's lease has not expired yet (ok false). Expiry is judged
// by the database's clock, so a process that dies stops holding the lease
// ttl after its last renewal whatever the clocks of the others say.
// Progress starts at zero.
func (db *DB) AcquireSyncLease(ctx context.Context, integrationID int64, kind, holder string, ttl time.Duration) (ok bool, err error) {
	if err := checkLease(kind, holder, ttl); err != nil {
		return false, err
	}
	now := db.clockMicros()
	q := `INSERT INTO sync_lease AS l (integration_id, kind, holder, started_at, expires_at, done, total)
		VALUES (?, ?, ?, ` + now + `, ` + now + ` + ?, 0, 0)
		ON CONFLICT (integration_id, kind) DO UPDATE SET holder = excluded.holder, started_at = excluded.started_at,
			expires_at = excluded.expires_at, done = 0, total = 0
		WHERE l.expires_at <= ` + now
	res, err := db.write.ExecContext(ctx, db.bind(q), integrationID, kind, holder, ttl.Microseconds())
	if err != nil {
		return false, fmt.Errorf("acquire the %s lease of integration %d: %w", kind, integrationID, mapError(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("acquire the %s lease of integration %d: %w", kind, integrationID, err)
	}
	return n == 1, nil
}

// RenewSyncLease extends holder's lease by ttl from now and records the
// run's progress. ok is false when holder no longer holds it (it expired
// and another run took it, or the integration is gone): the caller should
// stop.
func (db *DB) RenewSyncLease(ctx context.Context, integrationID int64, kind, holder string, ttl time.Duration, done, total int) (ok bool, err error) {
	if err := checkLease(kind, holder, ttl); err != nil {
		return false, err
	}
	q := `UPDATE sync_lease SET expires_at = ` + db.clockMicros() + ` + ?, done = ?, total = ?
		WHERE integration_id = ? AND kind = ? AND holder = ?`
	res, err := db.write.ExecContext(ctx, db.bind(q), ttl.Microseconds(), done, total, integrationID, kind, holder)
	if err != nil {
		return false, fmt.Errorf("renew the %s lease of integration %d: %w", kind, integrationID, mapError(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("renew the %s lease of integration %d: %w", kind, integrationID, err)
	}
	return n == 1, nil
}

// ReleaseSyncLease ends holder's lease; a lease it no longer holds is left
// alone.
func (db *DB) ReleaseSyncLease(ctx context.Context, integrationID int64, kind, holder string) error {
	_, err := db.write.ExecContext(ctx, db.bind(`DELETE FROM sync_lease WHERE integration_id = ? AND kind = ? AND holder = ?`),
		integrationID, kind, holder)
	if err != nil {
		return fmt.Errorf("release the %s lease of integration %d: %w", kind, integrationID, mapError(err))
	}
	return nil
}

// FindSyncLeases returns the unexpired leases of an integration (its
// running polls and reconciles, in whichever process), poll first.
func (db *DB) FindSyncLeases(ctx context.Context, integrationID int64) ([]SyncLease, error) {
	rows, err := db.read.QueryContext(ctx, db.bind(`SELECT kind, holder, started_at, expires_at, done, total FROM sync_lease
		WHERE integration_id = ? AND expires_at > `+db.clockMicros()+` ORDER BY kind`), integrationID)
	if err != nil {
		return nil, fmt.Errorf("find sync leases of integration %d: %w", integrationID, mapError(err))
	}
	defer rows.Close()
	var out []SyncLease
	for rows.Next() {
		l := SyncLease{IntegrationID: integrationID}
		var started, expires dbTime
		if err := rows.Scan(&l.Kind, &l.Holder, &started, &expires, &l.Done, &l.Total); err != nil {
			return nil, fmt.Errorf("find sync leases of integration %d: %w", integrationID, err)
		}
		l.StartedAt, l.ExpiresAt = started.T, expires.T
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find sync leases of integration %d: %w", integrationID, err)
	}
	return out, nil
}

func checkLease(kind, holder string, ttl time.Duration) error {
	switch {
	case kind != SyncLeasePoll && kind != SyncLeaseReconcile:
		return steward.Errorf(steward.CodeInvalid, "sync lease kind %q is not poll or reconcile", kind)
	case holder == "":
		return steward.Errorf(steward.CodeInvalid, "sync lease holder is empty")
	case ttl < time.Millisecond:
		return steward.Errorf(steward.CodeInvalid, "sync lease ttl %s is under a millisecond", ttl)
	}
	return nil
}

package store

import (
	"context"
	"fmt"
	"time"

	"github.com/stewardhq/steward"
)

// clockMicros is the database's clock in Unix microseconds, as SQL. Shared
// state (rate budgets, leases) is timed by the one clock every process
// sees, so skew between the hosts of several processes does not matter.
// PostgreSQL: statement_timestamp() is fixed for the statement, so one
// statement reads one "now" however often it names it. SQLite's
// unixepoch('subsec') has millisecond resolution, and 'now' is also fixed
// per statement.
func (db *DB) clockMicros() string {
	if db.dialect == dialectPostgres {
		return postgresClockMicros
	}
	return `CAST(unixepoch('subsec') * 1000000 AS INTEGER)`
}

// postgresClockMicros is clockMicros on PostgreSQL.
const postgresClockMicros = `CAST(EXTRACT(EPOCH FROM statement_timestamp()) * 1000000 AS BIGINT)`

// RateSlot is a request slot handed out by ReserveRateSlot: the request may
// start after Wait (zero when it may start at once).
type RateSlot struct {
	Wait time.Duration
}

// ReserveRateSlot reserves the next request slot of an integration's
// shared request budget: at most burst requests at once, then one every
// interval, across every process using the database (GCRA: one row per
// integration holds the theoretical arrival time, moved on by one interval
// per slot in a single statement, so the reservation is one round trip and
// needs no lock held across it). A slot that would start later than
// latest (typically the caller's deadline) is not reserved: ok is false
// and the budget is unchanged. A zero latest means no limit.
//
// Errors: CodeInvalid for a non-positive interval or burst; store errors.
func (db *DB) ReserveRateSlot(ctx context.Context, integrationID int64, interval time.Duration, burst int, latest time.Time) (slot RateSlot, ok bool, err error) {
	if interval <= 0 || burst < 1 {
		return RateSlot{}, false, steward.Errorf(steward.CodeInvalid, "rate budget needs a positive interval and burst, not %s and %d", interval, burst)
	}
	step := interval.Microseconds()
	if step == 0 {
		step = 1
	}
	// tolerance: how far ahead of now the arrival time may run while a
	// request still starts at once (burst-1 intervals).
	tolerance := step * int64(burst-1)
	// The slot starts at max(tat, now) - tolerance; past a deadline it is
	// not taken. (A new row's first slot starts now.)
	bound := int64(1<<63 - 1)
	if !latest.IsZero() {
		bound = latest.UnixMicro() + tolerance
	}
	now := db.clockMicros()
	q := `INSERT INTO rate_budget AS b (integration_id, tat) VALUES (?, ` + now + ` + ?)
		ON CONFLICT (integration_id) DO UPDATE SET tat = CASE WHEN b.tat + ? > excluded.tat THEN b.tat + ? ELSE excluded.tat END
		WHERE b.tat <= ?
		RETURNING tat, ` + now
	var tat, at int64
	err = db.write.QueryRowContext(ctx, db.bind(q), integrationID, step, step, step, bound).Scan(&tat, &at)
	if isNoRows(err) {
		return RateSlot{}, false, nil
	}
	if err != nil {
		return RateSlot{}, false, fmt.Errorf("reserve a request slot of integration %d: %w", integrationID, mapError(err))
	}
	start := tat - step - tolerance
	if start <= at {
		return RateSlot{}, true, nil
	}
	return RateSlot{Wait: time.Duration(start-at) * time.Microsecond}, true, nil
}

// DelayRateBudget pushes an integration's shared budget so that no slot
// starts within d from now (the instance answered 429 with Retry-After d):
// every process backs off, not only the one that was told. A budget
// already further ahead is left alone.
func (db *DB) DelayRateBudget(ctx context.Context, integrationID int64, d time.Duration, interval time.Duration, burst int) error {
	if d <= 0 {
		return nil
	}
	if interval <= 0 || burst < 1 {
		return steward.Errorf(steward.CodeInvalid, "rate budget needs a positive interval and burst, not %s and %d", interval, burst)
	}
	// The next slot starts at tat - tolerance: after the pause, the budget
	// starts from one free slot rather than a full burst.
	tolerance := interval.Microseconds() * int64(burst-1)
	q := `INSERT INTO rate_budget AS b (integration_id, tat) VALUES (?, ` + db.clockMicros() + ` + ?)
		ON CONFLICT (integration_id) DO UPDATE SET tat = CASE WHEN b.tat > excluded.tat THEN b.tat ELSE excluded.tat END`
	if _, err := db.write.ExecContext(ctx, db.bind(q), integrationID, d.Microseconds()+tolerance); err != nil {
		return fmt.Errorf("delay the request budget of integration %d: %w", integrationID, mapError(err))
	}
	return nil
}

// RateLimiter paces requests by an integration's shared budget: every
// process's limiter of one integration draws on the same row. It satisfies
// the ServiceNow client's Limiter and Delayer.
type RateLimiter struct {
	db            *DB
	integrationID int64
	interval      time.Duration
	burst         int
}

// RateLimiter returns the limiter of an integration's shared budget:
// requestsPerSecond with the given burst across all processes.
func (db *DB) RateLimiter(integrationID int64, requestsPerSecond float64, burst int) *RateLimiter {
	interval := time.Duration(float64(time.Second) / requestsPerSecond)
	return &RateLimiter{db: db, integrationID: integrationID, interval: max(interval, time.Microsecond), burst: max(burst, 1)}
}

// Wait reserves the next slot and waits for it. When the slot would start
// after ctx's deadline, nothing is reserved and Wait fails at once, as
// rate.Limiter does. A slot given up because ctx ended is not returned:
// the budget errs on the side of fewer requests.
func (l *RateLimiter) Wait(ctx context.Context) error {
	latest, _ := ctx.Deadline()
	slot, ok, err := l.db.ReserveRateSlot(ctx, l.integrationID, l.interval, l.burst, latest)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	if !ok {
		return steward.Errorf(steward.CodeUnavailable, "the request budget of integration %d has no slot before the deadline", l.integrationID)
	}
	if slot.Wait <= 0 {
		return nil
	}
	t := time.NewTimer(slot.Wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Delay keeps every process's next request at least d away (Retry-After).
func (l *RateLimiter) Delay(ctx context.Context, d time.Duration) error {
	return l.db.DelayRateBudget(ctx, l.integrationID, d, l.interval, l.burst)
}

package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/stewardhq/steward/internal/apiclient"
	"github.com/stewardhq/steward/internal/snowemu"
)

// offsetClock is the emulator's clock, moved ahead on demand (as the
// Sync100k benchmark does) so that records written before a jump fall
// outside a poll's overlap window.
type offsetClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *offsetClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *offsetClock) advance(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

// sync is the poll and reconcile scenario, run once (seeding its linked
// tickets through real ticket creation takes minutes at the integration's
// maximum of 1,000 requests/s). R tickets are created, the emulator's
// clock jumps 10 minutes, one ticket changes and a first `sync now`
// catches up (its watermark now past every creation); the clock jumps
// again, past the poll's overlap window, an agent changes C tickets with no webhook wired,
// and a second `sync now` (a poll, then a full reconcile of all R) is timed
// from the request to its completion. Its poll's requests are the Table
// API reads that start at a sys_updated_on watermark.
func (r *runner) sync(ctx context.Context) error {
	n := r.opts.ReconcileSize
	changes := min(1000, max(1, n/10))
	poll := r.row(Row{Scenario: "sync", Measure: fmt.Sprintf("poll after %s changes of %s linked tickets: Table API requests", group(int64(changes)), group(int64(n))),
		Unit: Count, BaselineText: "2 (recorded); naive: one GET per ticket", Note: "1 run"})
	reconcile := r.row(Row{Scenario: "sync", Measure: fmt.Sprintf("sync now: that poll + full reconcile of %s linked tickets, wall time", group(int64(n))),
		Unit: Seconds, BaselineText: "2.4–2.5 s reconcile at 100k (recorded)", Note: "1 run"})
	reconcileReqs := r.row(Row{Scenario: "sync", Measure: "sync now: Table API requests", Unit: Count,
		BaselineText: "1,000 reconcile at 100k (recorded)", Note: "1 run"})
	all := []*Row{poll, reconcile, reconcileReqs}
	r.logf("sync: run 1/1: creating %s linked tickets", group(int64(n)))
	err := func() error {
		clock := &offsetClock{}
		env, err := r.newTicketEnv(ctx, n, snowemu.Options{Clock: clock.now}, 0)
		if err != nil {
			return err
		}
		defer env.close()
		start := time.Now()
		if err := env.open(ctx); err != nil {
			return err
		}
		ts, err := env.waitCreated(ctx, 3*time.Minute)
		if err != nil {
			return err
		}
		r.logf("sync: %s tickets created in %.0f s", group(int64(n)), time.Since(start).Seconds())
		emu := env.emu.emu
		// One change after the clock's jump moves the catch-up poll's
		// watermark past the creations, so the measured poll's overlap
		// window holds none of them.
		clock.advance(10 * time.Minute)
		marker := ts[len(ts)-1]
		if _, err := emu.Reassign("incident", marker.SysID, agents[0], changer); err != nil {
			return fmt.Errorf("reassign %s: %w", marker.Number, err)
		}
		if _, _, err := env.syncNow(ctx); err != nil {
			return err
		}
		clock.advance(10 * time.Minute)
		want := map[int64]int{}
		for i, t := range ts[:changes] {
			rec, err := emu.Reassign("incident", t.SysID, agents[i%len(agents)], changer)
			if err != nil {
				return fmt.Errorf("reassign %s: %w", t.Number, err)
			}
			var mod int
			fmt.Sscan(rec["sys_mod_count"], &mod)
			want[t.AssignmentID] = mod
		}
		polls, before := env.emu.polls.Load(), ticketRequests(emu)
		secs, st, err := env.syncNow(ctx)
		if err != nil {
			return err
		}
		pollReqs, reqs := env.emu.polls.Load()-polls, ticketRequests(emu)-before
		now, err := env.tickets(ctx)
		if err != nil {
			return err
		}
		applied := 0
		for _, t := range now {
			if m, ok := want[t.AssignmentID]; ok && t.ModCount >= m {
				applied++
			}
		}
		if applied != changes {
			return fmt.Errorf("sync now applied %d of %d changes", applied, changes)
		}
		if st.LastReconcile.Checked != n {
			return fmt.Errorf("the reconcile checked %d tickets, want %d", st.LastReconcile.Checked, n)
		}
		poll.Values = append(poll.Values, float64(pollReqs))
		reconcile.Values = append(reconcile.Values, secs)
		reconcileReqs.Values = append(reconcileReqs.Values, float64(reqs))
		r.logf("sync: sync now after %d changes of %d: %.2f s, %d requests, %d of them the poll's", changes, n, secs, reqs, pollReqs)
		return nil
	}()
	if err != nil {
		fail(err, all...)
	}
	return err
}

// syncNow asks for a poll and a full reconcile and waits for both; it
// returns the seconds from the request to seeing the reconcile done.
func (e *ticketEnv) syncNow(ctx context.Context) (float64, *apiclient.SyncStatus, error) {
	start := time.Now()
	if _, err := e.st.client.SyncNow(ctx, e.integrationID); err != nil {
		return 0, nil, fmt.Errorf("sync now: %w", err)
	}
	var st *apiclient.SyncStatus
	err := waitFor(ctx, 30*time.Minute, 20*time.Millisecond, "sync now", func() (bool, error) {
		var err error
		st, err = e.st.client.SyncStatus(ctx, e.integrationID)
		return err == nil && st.Running == "" && st.LastReconcileSuccessAt != nil && st.LastReconcileSuccessAt.After(start) &&
			st.LastPollSuccessAt != nil && st.LastPollSuccessAt.After(start), err
	})
	if err != nil {
		return 0, nil, err
	}
	return time.Since(start).Seconds(), st, nil
}

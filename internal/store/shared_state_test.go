package store_test

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// TestRateBudget: a burst of slots starts at once, later slots are spaced
// by the interval whichever handle asks, a slot past the deadline is not
// taken (and costs nothing), and a Retry-After delay pushes every handle.
func TestRateBudget(t *testing.T) {
	storetest.ForEachBackendPair(t, func(t *testing.T, a, b *store.DB) {
		ctx := t.Context()
		in := storetest.Integration(t, a, "budget", "/subscriptions/s1")
		// Nothing here waits for a slot, it only reserves them, so the
		// interval can be long: a loaded machine (CI's race pass) stalling
		// between two statements for up to slack still leaves every wait
		// recognisable. With 100 ms intervals a 150 ms stall failed it.
		const (
			interval = 10 * time.Second
			slack    = 2 * time.Second
		)
		reserve := func(db *store.DB, latest time.Time) (time.Duration, bool) {
			t.Helper()
			slot, ok, err := db.ReserveRateSlot(ctx, in.ID, interval, 3, latest)
			require.NoError(t, err)
			return slot.Wait, ok
		}
		near := func(want, got time.Duration, what string) {
			t.Helper()
			// Time only passes between reservations, so a wait can only
			// come back shorter than its nominal value.
			require.LessOrEqual(t, got, want, what)
			require.Greater(t, got, want-slack, what)
		}
		// Burst 3: three at once, alternating handles.
		for i, db := range []*store.DB{a, b, a} {
			w, ok := reserve(db, time.Time{})
			require.True(t, ok)
			require.Zero(t, w, "slot %d of the burst", i)
		}
		// Then one per interval: the 4th waits about one interval, the
		// 5th about two (less the time the statements took).
		w4, _ := reserve(b, time.Time{})
		w5, _ := reserve(a, time.Time{})
		near(interval, w4, "4th slot")
		near(2*interval, w5, "5th slot")
		// A deadline before the next slot: refused, and the budget is
		// unchanged (the next slot is still about three intervals away).
		_, ok := reserve(b, time.Now().Add(interval))
		require.False(t, ok)
		w6, ok := reserve(b, time.Now().Add(10*interval))
		require.True(t, ok)
		near(3*interval, w6, "6th slot, after a refused one")

		// Retry-After of 100 s from handle a: handle b's next slot waits.
		require.NoError(t, a.DelayRateBudget(ctx, in.ID, 100*time.Second, interval, 3))
		w7, _ := reserve(b, time.Time{})
		near(100*time.Second, w7, "slot after Retry-After")
		// A shorter delay does not pull the budget back.
		require.NoError(t, b.DelayRateBudget(ctx, in.ID, 50*time.Second, interval, 3))
		w8, _ := reserve(a, time.Time{})
		near(100*time.Second+interval, w8, "slot after a shorter Retry-After")

		_, _, err := a.ReserveRateSlot(ctx, in.ID, 0, 1, time.Time{})
		storetest.RequireCode(t, err, steward.CodeInvalid)
	})
}

// TestRateBudgetConcurrent: handles reserving concurrently never hand out
// the same slot: n reservations from idle cover burst + (n-burst) slots
// spaced by the interval, so the last waits (n-burst) intervals.
func TestRateBudgetConcurrent(t *testing.T) {
	storetest.ForEachBackendPair(t, func(t *testing.T, a, b *store.DB) {
		ctx := t.Context()
		in := storetest.Integration(t, a, "budget", "/subscriptions/s1")
		const (
			interval = 10 * time.Millisecond
			burst    = 5
			n        = 60
		)
		var (
			mu    sync.Mutex
			waits []time.Duration
			wg    sync.WaitGroup
		)
		start := time.Now()
		for i := range n {
			db := a
			if i%2 == 1 {
				db = b
			}
			wg.Go(func() {
				slot, ok, err := db.ReserveRateSlot(ctx, in.ID, interval, burst, time.Time{})
				if !ok || err != nil {
					t.Errorf("reserve: ok %v, err %v", ok, err)
					return
				}
				mu.Lock()
				// The slot's start relative to the test's start.
				waits = append(waits, time.Since(start)+slot.Wait)
				mu.Unlock()
			})
		}
		wg.Wait()
		require.Len(t, waits, n)
		var last time.Duration
		for _, w := range waits {
			last = max(last, w)
		}
		want := time.Duration(n-burst) * interval
		require.GreaterOrEqual(t, last, want-20*time.Millisecond, "slots overlapped")
		require.Less(t, last, want+time.Since(start), "slots were lost")
	})
}

// TestSyncLease: one holder at a time across handles; renewal records
// progress that the other handle reads; release frees it; a holder that
// stops renewing (a dead process) loses the lease when it expires.
func TestSyncLease(t *testing.T) {
	storetest.ForEachBackendPair(t, func(t *testing.T, a, b *store.DB) {
		ctx := t.Context()
		in := storetest.Integration(t, a, "lease", "/subscriptions/s1")
		const ttl = time.Minute

		ok, err := a.AcquireSyncLease(ctx, in.ID, store.SyncLeasePoll, "a1", ttl)
		require.NoError(t, err)
		require.True(t, ok)
		ok, err = b.AcquireSyncLease(ctx, in.ID, store.SyncLeasePoll, "b1", ttl)
		require.NoError(t, err)
		require.False(t, ok, "held by a1")
		// Another kind is another lease.
		ok, err = b.AcquireSyncLease(ctx, in.ID, store.SyncLeaseReconcile, "b2", ttl)
		require.NoError(t, err)
		require.True(t, ok)

		ok, err = a.RenewSyncLease(ctx, in.ID, store.SyncLeasePoll, "a1", ttl, 7, 0)
		require.NoError(t, err)
		require.True(t, ok)
		ok, err = b.RenewSyncLease(ctx, in.ID, store.SyncLeaseReconcile, "b2", ttl, 300, 1000)
		require.NoError(t, err)
		require.True(t, ok)
		leases, err := b.FindSyncLeases(ctx, in.ID)
		require.NoError(t, err)
		require.Len(t, leases, 2)
		require.Equal(t, store.SyncLeasePoll, leases[0].Kind)
		require.Equal(t, "a1", leases[0].Holder)
		require.Equal(t, 7, leases[0].Done)
		require.Equal(t, store.SyncLeaseReconcile, leases[1].Kind)
		require.Equal(t, [2]int{300, 1000}, [2]int{leases[1].Done, leases[1].Total})

		// Someone else's renewal or release changes nothing.
		ok, err = b.RenewSyncLease(ctx, in.ID, store.SyncLeasePoll, "b1", ttl, 1, 1)
		require.NoError(t, err)
		require.False(t, ok)
		require.NoError(t, b.ReleaseSyncLease(ctx, in.ID, store.SyncLeasePoll, "b1"))
		ok, err = b.AcquireSyncLease(ctx, in.ID, store.SyncLeasePoll, "b1", ttl)
		require.NoError(t, err)
		require.False(t, ok)

		require.NoError(t, a.ReleaseSyncLease(ctx, in.ID, store.SyncLeasePoll, "a1"))
		ok, err = b.AcquireSyncLease(ctx, in.ID, store.SyncLeasePoll, "b1", 200*time.Millisecond)
		require.NoError(t, err)
		require.True(t, ok)
		leases, err = a.FindSyncLeases(ctx, in.ID)
		require.NoError(t, err)
		require.Equal(t, 0, leases[0].Done, "progress starts over")

		// b1 dies (no renewal): a takes the lease once it has expired, and
		// b1 learns at its next renewal that it lost it.
		require.Eventually(t, func() bool {
			ok, err := a.AcquireSyncLease(ctx, in.ID, store.SyncLeasePoll, "a2", ttl)
			require.NoError(t, err)
			return ok
		}, 5*time.Second, 20*time.Millisecond)
		ok, err = b.RenewSyncLease(ctx, in.ID, store.SyncLeasePoll, "b1", ttl, 1, 1)
		require.NoError(t, err)
		require.False(t, ok)

		_, err = a.AcquireSyncLease(ctx, in.ID, "push", "x", ttl)
		storetest.RequireCode(t, err, steward.CodeInvalid)
	})
}

// TestSyncLeaseRace: of many handles racing for a free lease, exactly one
// wins.
func TestSyncLeaseRace(t *testing.T) {
	storetest.ForEachBackendPair(t, func(t *testing.T, a, b *store.DB) {
		ctx := t.Context()
		in := storetest.Integration(t, a, "lease", "/subscriptions/s1")
		var (
			mu   sync.Mutex
			wins int
			wg   sync.WaitGroup
		)
		for i := range 20 {
			db := a
			if i%2 == 1 {
				db = b
			}
			wg.Go(func() {
				ok, err := db.AcquireSyncLease(ctx, in.ID, store.SyncLeaseReconcile, "h"+string(rune('a'+i)), time.Minute)
				if err != nil {
					t.Error(err)
					return
				}
				if ok {
					mu.Lock()
					wins++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		require.Equal(t, 1, wins)
	})
}

// TestImportProgress: progress written in a chunk's transaction is read
// from another handle once committed, never before; clearing removes it.
func TestImportProgress(t *testing.T) {
	storetest.ForEachBackendPair(t, func(t *testing.T, a, b *store.DB) {
		ctx := t.Context()
		imp := &store.Import{Format: "steward", Filename: "f.json", Size: 100, CreatedBy: "admin"}
		require.NoError(t, a.WithTx(ctx, func(tx *store.Tx) error { return tx.CreateImport(ctx, imp) }))

		_, ok, err := b.FindImportProgress(ctx, imp.ID)
		require.NoError(t, err)
		require.False(t, ok)

		require.NoError(t, a.SetImportProgress(ctx, imp.ID, store.ImportProgress{Phase: "validating", Records: 10, BytesRead: 40, BytesTotal: 100}))
		p, ok, err := b.FindImportProgress(ctx, imp.ID)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, store.ImportProgress{Phase: "validating", Records: 10, BytesRead: 40, BytesTotal: 100}, p)

		want := store.ImportProgress{Phase: "applying", Records: 5000, RecordsTotal: 9000, BytesRead: 60, BytesTotal: 100}
		require.NoError(t, a.WithTx(ctx, func(tx *store.Tx) error {
			require.NoError(t, tx.SetImportProgress(ctx, imp.ID, want))
			p, _, err := b.FindImportProgress(ctx, imp.ID)
			require.NoError(t, err)
			require.Equal(t, "validating", p.Phase, "uncommitted progress is not visible")
			return nil
		}))
		p, _, err = b.FindImportProgress(ctx, imp.ID)
		require.NoError(t, err)
		require.Equal(t, want, p)

		require.NoError(t, a.ClearImportProgress(ctx, imp.ID))
		_, ok, err = b.FindImportProgress(ctx, imp.ID)
		require.NoError(t, err)
		require.False(t, ok)
	})
}

// BenchmarkReserveRateSlot: the cost of one shared-budget reservation (one
// statement on the writer) per backend, against a ServiceNow request of
// tens of milliseconds.
//
//	go test -run '^$' -bench ReserveRateSlot ./internal/store/
func BenchmarkReserveRateSlot(b *testing.B) {
	for _, be := range storetest.Backends {
		b.Run(string(be), func(b *testing.B) {
			db := storetest.MustOpenURL(b, storetest.NewURL(b, be))
			in := storetest.Integration(b, db, "budget", "/subscriptions/s1")
			for b.Loop() {
				// A fast interval and a huge burst: every slot is free, so
				// only the statement is measured.
				if _, _, err := db.ReserveRateSlot(b.Context(), in.ID, time.Nanosecond, 1<<30, time.Time{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

package ticketsync_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/jobs"
	"github.com/stewardhq/steward/internal/netpolicy"
	"github.com/stewardhq/steward/internal/secret"
	"github.com/stewardhq/steward/internal/server"
	"github.com/stewardhq/steward/internal/snowemu"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/pgtest"
	"github.com/stewardhq/steward/internal/store/storetest"
	"github.com/stewardhq/steward/internal/ticketsync"
)

// sharedSync is an emulator with linked incidents and two sync services,
// as two processes would run them: on PostgreSQL each on its own *store.DB
// handle of one database; on SQLite (one process per database file) the
// same service twice.
type sharedSync struct {
	emu      *snowemu.Emulator
	a, b     *ticketsync.Service
	dbA, dbB *store.DB
	in       *steward.Integration
	inFlight atomic.Int64 // GETs being answered now
	maxGETs  atomic.Int64 // the most at once
}

func setupSharedSync(t *testing.T, backend storetest.Backend, tickets int) *sharedSync {
	t.Helper()
	ctx := t.Context()
	s := &sharedSync{}
	s.emu = snowemu.New(snowemu.Options{AdminPassword: emuPassword}, slog.New(slog.DiscardHandler))
	t.Cleanup(func() { _ = s.emu.Close() })
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			n := s.inFlight.Add(1)
			defer s.inFlight.Add(-1)
			for m := s.maxGETs.Load(); n > m && !s.maxGETs.CompareAndSwap(m, n); m = s.maxGETs.Load() {
			}
		}
		s.emu.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)

	logger := slog.New(slog.DiscardHandler)
	box := storetest.Box(t)
	switch backend {
	case storetest.Postgres:
		url := pgtest.URL(t)
		s.dbA, s.dbB = storetest.MustOpenURL(t, url), storetest.MustOpenURL(t, url)
	default:
		s.dbA = storetest.MustOpenURL(t, filepath.Join(t.TempDir(), "steward.db"))
		s.dbB = s.dbA
	}
	s.dbA.SetSecretBox(box)
	if s.dbB != s.dbA {
		s.dbB.SetSecretBox(box)
	}
	newService := func(db *store.DB) *ticketsync.Service {
		svc := ticketsync.New(ticketsync.Config{}, db, jobs.NewQueue(), server.ServiceNowFactory(db, logger, netpolicy.Policy{}), logger, nil)
		ticketsync.SetLeaseTiming(svc, 2*time.Second, 50*time.Millisecond, 50*time.Millisecond)
		return svc
	}
	s.a = newService(s.dbA)
	s.b = s.a
	if s.dbB != s.dbA {
		s.b = newService(s.dbB)
	}

	s.in = &steward.Integration{Name: "shared", Scope: "/subscriptions/s1", InstanceURL: hs.URL, Local: true,
		AuthMode: steward.AuthBasic, Username: "admin", RequestsPerSecond: 1000}
	require.NoError(t, s.a.CreateIntegration(ctx, s.in, store.IntegrationSecrets{Password: secret.New(emuPassword)}, true, "admin@example.com"))

	obs := make([]steward.Observation, tickets)
	for i := range obs {
		obs[i] = storetest.Observation("disk-encryption", fmt.Sprintf("/subscriptions/s1/vm%d", i), steward.StatusUnhealthy)
	}
	storetest.Apply(t, s.dbA, time.Time{}, obs...)
	var specs []storetest.LinkSpec
	cursor := ""
	for {
		page, next, err := s.dbA.FindAssessments(ctx, store.AssessmentFilter{Cursor: cursor, Limit: store.MaxLimit})
		require.NoError(t, err)
		for _, a := range page {
			corr := fmt.Sprintf("shared-%d", a.ID)
			rec, err := s.emu.Create("incident", snowemu.Record{"short_description": "shared", "correlation_id": corr}, "")
			require.NoError(t, err)
			at, err := time.Parse("2006-01-02 15:04:05", rec["sys_updated_on"])
			require.NoError(t, err)
			specs = append(specs, storetest.LinkSpec{AssessmentID: a.ID, Type: steward.TicketTypeIncident, Table: "incident",
				CorrelationID: corr, SysID: rec["sys_id"], Number: rec["number"], Owner: "beth.anglin@example.com", RemoteUpdatedAt: at})
		}
		if cursor = next; cursor == "" {
			break
		}
	}
	require.Len(t, specs, tickets)
	storetest.LinkTickets(t, s.dbA, s.in.ID, specs)
	return s
}

// TestSyncReconcileOneAtATime: two reconciles of one integration started
// together run one after the other, across processes on PostgreSQL: the
// emulator never sees more GETs at once than one reconcile sends
// (reconcileParallel, 4). While the first runs, the other process's status
// shows it running, with its progress (done of total) as it moves.
func TestSyncReconcileOneAtATime(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends {
		t.Run(string(backend), func(t *testing.T) {
			t.Parallel()
			const tickets = 1200 // two store pages (1,000 and 200): progress moves once before the end
			s := setupSharedSync(t, backend, tickets)
			// Slow answers: each page of ten batch reads takes about a second.
			s.emu.SetFaults(snowemu.Faults{Latency: 300 * time.Millisecond, Methods: []string{"GET"}})

			var wg sync.WaitGroup
			first := make(chan struct{})
			wg.Go(func() {
				defer close(first)
				rep, err := s.a.Reconcile(t.Context(), s.in.ID)
				assert.NoError(t, err)
				assert.Equal(t, tickets, rep.Checked)
			})
			// The other process sees the run and its progress.
			var seen ticketsync.SyncProgress
			require.Eventually(t, func() bool {
				st, err := s.b.SyncStatus(t.Context(), s.in.ID)
				require.NoError(t, err)
				if st.Running == "reconcile" {
					seen = st.Progress
				}
				return seen.Done > 0 && seen.Done < tickets
			}, 20*time.Second, 20*time.Millisecond)
			require.Equal(t, tickets, seen.Total)
			// A second reconcile from the other process, while the first
			// runs: it waits for the first.
			var secondDone atomic.Bool
			wg.Go(func() {
				rep, err := s.b.Reconcile(t.Context(), s.in.ID)
				assert.NoError(t, err)
				assert.Equal(t, tickets, rep.Checked)
				secondDone.Store(true)
			})
			<-first
			require.False(t, secondDone.Load(), "the second reconcile ended before the first")
			wg.Wait()
			require.LessOrEqual(t, s.maxGETs.Load(), int64(4), "two reconciles overlapped")

			st, err := s.a.SyncStatus(t.Context(), s.in.ID)
			require.NoError(t, err)
			require.Empty(t, st.Running, "nothing runs once both ended")
		})
	}
}

// TestSyncLeaseOfDeadProcess (PostgreSQL): a poll lease left by a process
// that died (never renewed, never released) holds other processes' polls
// back only until it expires; meanwhile their status shows the poll as
// running.
func TestSyncLeaseOfDeadProcess(t *testing.T) {
	t.Parallel()
	s := setupSharedSync(t, storetest.Postgres, 3)
	const ttl = 1500 * time.Millisecond
	ok, err := s.dbA.AcquireSyncLease(t.Context(), s.in.ID, store.SyncLeasePoll, "dead-process", ttl)
	require.NoError(t, err)
	require.True(t, ok)
	start := time.Now()
	st, err := s.b.SyncStatus(t.Context(), s.in.ID)
	require.NoError(t, err)
	require.Equal(t, "poll", st.Running)

	_, err = s.b.Poll(t.Context(), s.in.ID)
	require.NoError(t, err)
	require.GreaterOrEqual(t, time.Since(start), ttl-100*time.Millisecond, "the poll ran while the dead process's lease held")
	leases, err := s.dbA.FindSyncLeases(t.Context(), s.in.ID)
	require.NoError(t, err)
	require.Empty(t, leases, "the poll released its lease")
}

// TestSyncLeaseLost (PostgreSQL): a poll whose lease was taken over (it
// could not renew in time, and another process took it) stops at its next
// renewal instead of running on beside the new holder, and says why.
func TestSyncLeaseLost(t *testing.T) {
	t.Parallel()
	s := setupSharedSync(t, storetest.Postgres, 3)
	s.emu.SetFaults(snowemu.Faults{Latency: 5 * time.Second, Methods: []string{"GET"}})
	errc := make(chan error, 1)
	go func() {
		_, err := s.a.Poll(t.Context(), s.in.ID)
		errc <- err
	}()
	require.Eventually(t, func() bool {
		leases, err := s.dbB.FindSyncLeases(t.Context(), s.in.ID)
		require.NoError(t, err)
		return len(leases) == 1
	}, 5*time.Second, 10*time.Millisecond)
	_, err := s.dbB.Writer().ExecContext(t.Context(), `UPDATE sync_lease SET holder = 'another-process'`)
	require.NoError(t, err)

	start := time.Now()
	err = <-errc
	require.ErrorContains(t, err, "sync lease lost to another process")
	require.Less(t, time.Since(start), 4*time.Second, "stopped at its next renewal, not after the slow read")
	st, err := s.b.SyncStatus(t.Context(), s.in.ID)
	require.NoError(t, err)
	require.Contains(t, st.LastError, "sync lease lost")
	leases, err := s.dbB.FindSyncLeases(t.Context(), s.in.ID)
	require.NoError(t, err)
	require.Equal(t, "another-process", leases[0].Holder, "the new holder's lease is left alone")
}

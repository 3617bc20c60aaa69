package ticketsync_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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

// drainEnv is an emulator with linked incidents and a sync Service whose
// drainer is not running: a test queues webhook refreshes and drains them
// itself (ticketsync.DrainOnce), so what each drain reads is exact.
type drainEnv struct {
	emu  *snowemu.Emulator
	db   *store.DB
	url  string // the database's
	in   *steward.Integration
	recs []snowemu.Record // the linked records, as created
	// fail answers every Table API read 403 while set.
	fail atomic.Bool
	// afterRead, when set, runs once after the emulator answered a read
	// and before the answer reaches Steward.
	afterRead atomic.Pointer[func()]
	factory   ticketsync.ProviderFactory
}

func setupDrain(t *testing.T, backend storetest.Backend, tickets int) *drainEnv {
	t.Helper()
	ctx := t.Context()
	e := &drainEnv{}
	e.emu = snowemu.New(snowemu.Options{AdminPassword: emuPassword}, slog.New(slog.DiscardHandler))
	t.Cleanup(func() { _ = e.emu.Close() })
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || !strings.HasPrefix(r.URL.Path, "/api/now/table/") {
			e.emu.ServeHTTP(w, r)
			return
		}
		if e.fail.Load() {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"error":{"message":"User Not Authorized","detail":"test"},"status":"failure"}`))
			return
		}
		f := e.afterRead.Swap(nil)
		if f == nil {
			e.emu.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		e.emu.ServeHTTP(rec, r)
		(*f)()
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	}))
	t.Cleanup(hs.Close)

	switch backend {
	case storetest.Postgres:
		e.url = pgtest.URL(t)
	default:
		e.url = filepath.Join(t.TempDir(), "steward.db")
	}
	e.db = storetest.MustOpenURL(t, e.url)
	e.db.SetSecretBox(storetest.Box(t))
	e.factory = server.ServiceNowFactory(e.db, slog.New(slog.DiscardHandler), netpolicy.Policy{})
	e.in = &steward.Integration{Name: "drain", Scope: "/subscriptions/s1", InstanceURL: hs.URL, Local: true,
		AuthMode: steward.AuthBasic, Username: "admin", RequestsPerSecond: 1000}
	require.NoError(t, e.service(0).CreateIntegration(ctx, e.in, store.IntegrationSecrets{Password: secret.New(emuPassword)}, true, "admin@example.com"))

	obs := make([]steward.Observation, tickets)
	for i := range obs {
		obs[i] = storetest.Observation("disk-encryption", fmt.Sprintf("/subscriptions/s1/vm%d", i), steward.StatusUnhealthy)
	}
	storetest.Apply(t, e.db, time.Time{}, obs...)
	page, _, err := e.db.FindAssessments(ctx, store.AssessmentFilter{Limit: store.MaxLimit})
	require.NoError(t, err)
	require.Len(t, page, tickets)
	installation, err := e.db.InstallationID(ctx)
	require.NoError(t, err)
	var specs []storetest.LinkSpec
	for _, a := range page {
		// This installation's correlation IDs: a poll reads only those.
		corr := fmt.Sprintf("%sdrain%d", ticketsync.CorrelationPrefix(installation), a.ID)
		rec, err := e.emu.Create("incident", snowemu.Record{"short_description": "drain", "correlation_id": corr}, "")
		require.NoError(t, err)
		at, err := time.Parse("2006-01-02 15:04:05", rec["sys_updated_on"])
		require.NoError(t, err)
		mod, err := strconv.Atoi(rec["sys_mod_count"])
		require.NoError(t, err)
		e.recs = append(e.recs, rec)
		specs = append(specs, storetest.LinkSpec{AssessmentID: a.ID, Type: steward.TicketTypeIncident, Table: "incident",
			CorrelationID: corr, SysID: rec["sys_id"], Number: rec["number"], Owner: "beth.anglin@example.com",
			RemoteUpdatedAt: at, ModCount: mod})
	}
	storetest.LinkTickets(t, e.db, e.in.ID, specs)
	return e
}

// service is a sync Service on the env's database reading SyncBatch
// records per request (0: the default).
func (e *drainEnv) service(batch int) *ticketsync.Service {
	return ticketsync.New(ticketsync.Config{SyncBatch: batch}, e.db, jobs.NewQueue(), e.factory, slog.New(slog.DiscardHandler), nil)
}

// reassign has an agent give record i to who and announces the change as
// its webhook would; it returns the new sys_mod_count.
func (e *drainEnv) reassign(t *testing.T, svc *ticketsync.Service, i int, who string) int {
	t.Helper()
	rec, err := e.emu.Reassign("incident", e.recs[i]["number"], who, "beth.anglin")
	require.NoError(t, err)
	mod, err := strconv.Atoi(rec["sys_mod_count"])
	require.NoError(t, err)
	require.NoError(t, svc.QueueRefresh(t.Context(), e.in.ID, "incident", e.recs[i]["sys_id"], mod, false))
	return mod
}

// reads counts the emulator's incident reads: sys_idIN lists and single
// records.
func (e *drainEnv) reads() (lists, singles int) {
	req := e.emu.Requests()
	return req["GET /api/now/table/incident"], req["GET /api/now/table/incident/{sys_id}"]
}

func (e *drainEnv) pending(t *testing.T) int {
	t.Helper()
	var n int
	require.NoError(t, e.db.Writer().QueryRowContext(t.Context(), `SELECT count(*) FROM sync_pending`).Scan(&n))
	return n
}

// requireApplied checks record i's ticket is at mod and its assignment's
// owner is owner.
func (e *drainEnv) requireApplied(t *testing.T, i, mod int, owner string) {
	t.Helper()
	tk, err := e.db.FindTicketBySysID(t.Context(), e.in.ID, e.recs[i]["sys_id"])
	require.NoError(t, err)
	require.Equal(t, mod, tk.ModCount, "record %d", i)
	a, err := e.db.FindAssignmentByID(t.Context(), tk.AssignmentID)
	require.NoError(t, err)
	require.Equal(t, owner, a.Owner, "record %d", i)
}

// TestDrainReadsInBatches: N announced records cost ceil(N/SyncBatch)
// Table API reads, each batch applied; SyncBatch 1 is one read per record.
func TestDrainReadsInBatches(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends {
		for _, tc := range []struct{ records, batch, reads int }{{250, 0, 3}, {7, 1, 7}, {7, 3, 3}} {
			t.Run(fmt.Sprintf("%s/%d-by-%d", backend, tc.records, tc.batch), func(t *testing.T) {
				t.Parallel()
				e := setupDrain(t, backend, tc.records)
				svc := e.service(tc.batch)
				mods := make([]int, tc.records)
				for i := range mods {
					mods[i] = e.reassign(t, svc, i, "david.loo")
				}
				require.Equal(t, tc.records, e.pending(t))

				ticketsync.DrainOnce(svc, e.in.ID)
				lists, singles := e.reads()
				require.Equal(t, tc.reads, lists+singles, "reads (lists %d, singles %d)", lists, singles)
				if tc.batch == 1 {
					require.Zero(t, lists, "the naive path reads record by record")
				}
				require.Zero(t, e.pending(t))
				for i, mod := range mods {
					e.requireApplied(t, i, mod, "david.loo@example.com")
				}
			})
		}
	}
}

// TestDrainDuplicatesOneRead: announcements of two versions of one record
// (each delivered twice) are one pending record, read once; the later
// version is applied, without a step through the earlier one.
func TestDrainDuplicatesOneRead(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends {
		t.Run(string(backend), func(t *testing.T) {
			t.Parallel()
			e := setupDrain(t, backend, 3)
			svc := e.service(0)
			first := e.reassign(t, svc, 1, "fred.luddy")
			require.NoError(t, svc.QueueRefresh(t.Context(), e.in.ID, "incident", e.recs[1]["sys_id"], first, false))
			second := e.reassign(t, svc, 1, "david.loo")
			require.NoError(t, svc.QueueRefresh(t.Context(), e.in.ID, "incident", e.recs[1]["sys_id"], first, false)) // late duplicate
			require.Greater(t, second, first)
			require.Equal(t, 1, e.pending(t))

			ticketsync.DrainOnce(svc, e.in.ID)
			lists, singles := e.reads()
			require.Equal(t, 1, lists+singles)
			require.Zero(t, e.pending(t))
			e.requireApplied(t, 1, second, "david.loo@example.com")
			tk, err := e.db.FindTicketBySysID(t.Context(), e.in.ID, e.recs[1]["sys_id"])
			require.NoError(t, err)
			events, err := e.db.FindAssignmentEvents(t.Context(), tk.AssignmentID)
			require.NoError(t, err)
			var owners []string
			for _, ev := range events {
				if ev.Actor == steward.IntegrationActor("drain") {
					owners = append(owners, ev.Reason)
				}
			}
			require.Len(t, owners, 1, "one owner change, to the final assignee: %v", owners)

			// Announcing the applied version again reads nothing.
			require.NoError(t, svc.QueueRefresh(t.Context(), e.in.ID, "incident", e.recs[1]["sys_id"], second, false))
			ticketsync.DrainOnce(svc, e.in.ID)
			l2, s2 := e.reads()
			require.Equal(t, lists+singles, l2+s2, "an applied version is not read again")
			require.Zero(t, e.pending(t))
		})
	}
}

// TestDrainFailedReadStaysPending: a read that fails leaves its records
// pending (backing off) with the error in the sync status; once the
// instance answers again they are applied and the error is cleared.
func TestDrainFailedReadStaysPending(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends {
		t.Run(string(backend), func(t *testing.T) {
			t.Parallel()
			e := setupDrain(t, backend, 2)
			svc := e.service(0)
			m0 := e.reassign(t, svc, 0, "david.loo")
			m1 := e.reassign(t, svc, 1, "david.loo")

			e.fail.Store(true)
			ticketsync.DrainOnce(svc, e.in.ID)
			require.Equal(t, 2, e.pending(t), "nothing lost")
			st, err := svc.SyncStatus(t.Context(), e.in.ID)
			require.NoError(t, err)
			require.True(t, strings.HasPrefix(st.LastError, "refresh: "), st.LastError)
			e.requireApplied(t, 0, m0-1, "beth.anglin@example.com")

			// Backing off: a drain now reads nothing.
			e.fail.Store(false)
			ticketsync.DrainOnce(svc, e.in.ID)
			lists, singles := e.reads()
			require.Zero(t, lists+singles)
			require.Equal(t, 2, e.pending(t))

			// The backoff over, they are applied.
			_, err = e.db.Writer().ExecContext(t.Context(), `UPDATE sync_pending SET not_before = 0`)
			require.NoError(t, err)
			ticketsync.DrainOnce(svc, e.in.ID)
			require.Zero(t, e.pending(t))
			e.requireApplied(t, 0, m0, "david.loo@example.com")
			e.requireApplied(t, 1, m1, "david.loo@example.com")
			st, err = svc.SyncStatus(t.Context(), e.in.ID)
			require.NoError(t, err)
			require.Empty(t, st.LastError)
		})
	}
}

// TestDrainNewerEventDuringDrain: a change announced after the drain's
// read was answered (so the read did not see it) stays pending and is
// applied by the next drain.
func TestDrainNewerEventDuringDrain(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends {
		t.Run(string(backend), func(t *testing.T) {
			t.Parallel()
			e := setupDrain(t, backend, 2)
			svc := e.service(0)
			e.reassign(t, svc, 0, "fred.luddy")
			first := e.reassign(t, svc, 1, "fred.luddy")
			var second int
			f := func() { second = e.reassign(t, svc, 1, "david.loo") }
			e.afterRead.Store(&f)

			ticketsync.DrainOnce(svc, e.in.ID)
			require.Greater(t, second, first, "the change came during the drain")
			lists, singles := e.reads()
			require.Equal(t, 2, lists+singles, "the batch, then the newer change")
			require.Zero(t, e.pending(t))
			e.requireApplied(t, 1, second, "david.loo@example.com")
		})
	}
}

// TestDrainAfterRestart: a queued refresh is durable: a Service that never
// drained it (a process that stopped after answering the webhook) leaves
// it to the next one, whose drainer applies it.
func TestDrainAfterRestart(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends {
		t.Run(string(backend), func(t *testing.T) {
			t.Parallel()
			e := setupDrain(t, backend, 1)
			mod := e.reassign(t, e.service(0), 0, "david.loo")
			require.Equal(t, 1, e.pending(t))

			next := e.service(0)
			next.StartDrainer()
			defer next.StopDrainer()
			require.Eventually(t, func() bool { return e.pending(t) == 0 }, 10*time.Second, 10*time.Millisecond)
			e.requireApplied(t, 0, mod, "david.loo@example.com")
		})
	}
}

// TestDrainTwoProcesses (PostgreSQL): two processes draining one
// integration at once read each pending record once between them: the
// rows one takes are claimed, and the other skips them.
func TestDrainTwoProcesses(t *testing.T) {
	t.Parallel()
	e := setupDrain(t, storetest.Postgres, 250)
	other := storetest.MustOpenURL(t, e.url)
	other.SetSecretBox(storetest.Box(t))
	a := e.service(0)
	b := ticketsync.New(ticketsync.Config{}, other, jobs.NewQueue(),
		server.ServiceNowFactory(other, slog.New(slog.DiscardHandler), netpolicy.Policy{}), slog.New(slog.DiscardHandler), nil)
	mods := make([]int, 250)
	for i := range mods {
		svc := a
		if i%2 == 1 {
			svc = b
		}
		mods[i] = e.reassign(t, svc, i, "david.loo")
	}

	var wg sync.WaitGroup
	wg.Go(func() { ticketsync.DrainOnce(a, e.in.ID) })
	wg.Go(func() { ticketsync.DrainOnce(b, e.in.ID) })
	wg.Wait()
	lists, singles := e.reads()
	// 250 records: 3 reads of up to 100 if one process took them all; one
	// more at most for each table the two split between them.
	require.LessOrEqual(t, lists+singles, 4, "reads (lists %d, singles %d)", lists, singles)
	require.Zero(t, e.pending(t))
	for i, mod := range mods {
		e.requireApplied(t, i, mod, "david.loo@example.com")
	}
}

// TestDrainDeletedRecord: a delete is never skipped as already applied
// (it carries the last sys_mod_count); a record the batch read does not
// return is confirmed with a single read, and only "not found" applies the
// deleted policy, in the batch's transaction.
func TestDrainDeletedRecord(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends {
		t.Run(string(backend), func(t *testing.T) {
			t.Parallel()
			e := setupDrain(t, backend, 2)
			svc := e.service(0)
			mod := e.reassign(t, svc, 0, "david.loo")
			stored, err := e.db.FindTicketBySysID(t.Context(), e.in.ID, e.recs[1]["sys_id"])
			require.NoError(t, err)
			require.NoError(t, e.emu.DeleteRecord("incident", e.recs[1]["number"], "beth.anglin"))
			require.NoError(t, svc.QueueRefresh(t.Context(), e.in.ID, "incident", e.recs[1]["sys_id"], stored.ModCount, true))

			ticketsync.DrainOnce(svc, e.in.ID)
			lists, singles := e.reads()
			require.Equal(t, 1, lists, "one batch read")
			require.Equal(t, 1, singles, "the missing record confirmed on its own")
			require.Zero(t, e.pending(t))
			e.requireApplied(t, 0, mod, "david.loo@example.com")
			gone, err := e.db.FindTicketBySysID(t.Context(), e.in.ID, e.recs[1]["sys_id"])
			require.NoError(t, err)
			require.Equal(t, steward.TicketFlagDeleted, gone.Flag)
		})
	}
}

// TestPollAppliesInBatches: a poll applies what it reads SyncBatch
// records per transaction (here 2: three batches for five records), with
// the same outcome as one record at a time.
func TestPollAppliesInBatches(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends {
		t.Run(string(backend), func(t *testing.T) {
			t.Parallel()
			e := setupDrain(t, backend, 5)
			svc := e.service(2)
			mods := make([]int, 5)
			for i := range mods {
				rec, err := e.emu.Reassign("incident", e.recs[i]["number"], "david.loo", "beth.anglin")
				require.NoError(t, err)
				mods[i], err = strconv.Atoi(rec["sys_mod_count"])
				require.NoError(t, err)
			}
			rep, err := svc.Poll(t.Context(), e.in.ID)
			require.NoError(t, err)
			require.Equal(t, 5, rep.Seen)
			require.Equal(t, 5, rep.Changed)
			for i, mod := range mods {
				e.requireApplied(t, i, mod, "david.loo@example.com")
			}
			// Again: every record is now stored at its version.
			rep, err = svc.Poll(t.Context(), e.in.ID)
			require.NoError(t, err)
			require.Zero(t, rep.Changed)
		})
	}
}

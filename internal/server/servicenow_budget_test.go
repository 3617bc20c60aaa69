package server_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward/internal/itsm"
	"github.com/stewardhq/steward/internal/netpolicy"
	"github.com/stewardhq/steward/internal/secret"
	"github.com/stewardhq/steward/internal/server"
	"github.com/stewardhq/steward/internal/snowemu"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/pgtest"
	"github.com/stewardhq/steward/internal/store/storetest"
	"github.com/stewardhq/steward/internal/ticketsync"
)

// TestServiceNowSharedBudget: three ServiceNow clients, each built by the
// provider factory on its own *store.DB handle of one PostgreSQL database
// (three processes), send as fast as they can for a few seconds; the
// requests the emulator receives stay within requests_per_second × the
// time + burst. The same three clients without the database (each with
// its in-process limiter, as before) send about three times that, so the
// bound is a real one.
func TestServiceNowSharedBudget(t *testing.T) {
	url := pgtest.URL(t)
	const (
		rps      = 20 // the integration's requests_per_second; burst defaults to 20
		burst    = 20
		clients  = 3
		senders  = 6 // goroutines per client
		duration = 3 * time.Second
	)
	emu := snowemu.New(snowemu.Options{AdminPassword: "emu-pw", NoSeed: true}, slog.New(slog.DiscardHandler))
	t.Cleanup(func() { _ = emu.Close() })
	_, err := emu.AddUser(snowemu.UserSpec{UserName: "steward", FirstName: "Steward", LastName: "Integration",
		Email: "steward@example.com", Password: "pw-budget", Roles: []string{"itil"}})
	require.NoError(t, err)
	// The emulator's request log counts per path; the times come from a
	// counting handler in front of it.
	var count atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		count.Add(1)
		emu.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)

	dbs := make([]*store.DB, clients)
	for i := range dbs {
		dbs[i] = storetest.MustOpenURL(t, url)
	}
	stored := storetest.Integration(t, dbs[0], "budget", "/subscriptions/s1")
	in := *stored
	in.InstanceURL, in.Local, in.RequestsPerSecond = srv.URL, true, rps
	secrets := store.IntegrationSecrets{Password: secret.New("pw-budget")}

	run := func(t *testing.T, factories []ticketsync.ProviderFactory) (int64, time.Duration) {
		t.Helper()
		providers := make([]itsm.Provider, len(factories))
		for i, f := range factories {
			p, err := f(&in, secrets)
			require.NoError(t, err)
			providers[i] = p
		}
		count.Store(0)
		// Stopped by a cancel, not a deadline: a limiter refuses a wait
		// that would outlast a deadline, which would end the senders early.
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		start := time.Now()
		stop := time.AfterFunc(duration, cancel)
		defer stop.Stop()
		var wg sync.WaitGroup
		for _, p := range providers {
			for range senders {
				wg.Go(func() {
					for ctx.Err() == nil {
						// An unknown record: one GET, answered 404.
						_, err := p.Ticket(ctx, itsm.Ref{Table: "incident", SysID: "00000000000000000000000000000000"})
						if err != nil && !itsm.IsKind(err, itsm.KindNotFound) && ctx.Err() == nil {
							t.Errorf("request: %v", err)
							return
						}
					}
				})
			}
		}
		wg.Wait()
		return count.Load(), time.Since(start)
	}

	logger := slog.New(slog.DiscardHandler)
	policy := netpolicy.Policy{}
	shared := make([]ticketsync.ProviderFactory, clients)
	local := make([]ticketsync.ProviderFactory, clients)
	for i := range clients {
		shared[i] = server.ServiceNowFactory(dbs[i], logger, policy)
		local[i] = server.ServiceNowFactory(nil, logger, policy)
	}

	n, took := run(t, shared)
	limit := rps*took.Seconds() + burst
	t.Logf("shared budget: %d requests in %s = %.1f/s, %.1f/s after the burst (limit %d/s, at most %.0f with the burst)", n, took.Round(time.Millisecond),
		float64(n)/took.Seconds(), float64(n-burst)/took.Seconds(), rps, limit)
	require.LessOrEqual(t, float64(n), limit, "three processes together exceeded the integration's rate")
	require.GreaterOrEqual(t, float64(n), 0.8*limit, "the shared budget starved the clients")

	n, took = run(t, local)
	t.Logf("in-process limiters: %d requests in %s = %.1f/s", n, took.Round(time.Millisecond), float64(n)/took.Seconds())
	require.Greater(t, float64(n), 2*limit, "without the shared budget three processes send about three times the rate")
}

// TestServiceNowSharedRetryAfter: a 429 with Retry-After answered to one
// process's client holds back the other process's client too (PostgreSQL,
// two handles on one database).
func TestServiceNowSharedRetryAfter(t *testing.T) {
	url := pgtest.URL(t)
	emu := snowemu.New(snowemu.Options{AdminPassword: "emu-pw", NoSeed: true}, slog.New(slog.DiscardHandler))
	t.Cleanup(func() { _ = emu.Close() })
	_, err := emu.AddUser(snowemu.UserSpec{UserName: "steward", FirstName: "Steward", LastName: "Integration",
		Email: "steward@example.com", Password: "pw-budget", Roles: []string{"itil"}})
	require.NoError(t, err)
	var (
		mu       sync.Mutex
		arrivals []time.Time
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		arrivals = append(arrivals, time.Now())
		first := len(arrivals) == 1
		mu.Unlock()
		if first {
			w.Header().Set("Retry-After", "2")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write([]byte(`{"error":{"message":"Rate limit exceeded"},"status":"failure"}`))
			return
		}
		emu.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)

	dbA, dbB := storetest.MustOpenURL(t, url), storetest.MustOpenURL(t, url)
	stored := storetest.Integration(t, dbA, "budget", "/subscriptions/s1")
	in := *stored
	in.InstanceURL, in.Local, in.RequestsPerSecond = srv.URL, true, 100
	secrets := store.IntegrationSecrets{Password: secret.New("pw-budget")}
	logger := slog.New(slog.DiscardHandler)
	a, err := server.ServiceNowFactory(dbA, logger, netpolicy.Policy{})(&in, secrets)
	require.NoError(t, err)
	b, err := server.ServiceNowFactory(dbB, logger, netpolicy.Policy{})(&in, secrets)
	require.NoError(t, err)

	ref := itsm.Ref{Table: "incident", SysID: "00000000000000000000000000000000"}
	// a is answered 429 with Retry-After: 2, waits and retries (404).
	aDone := make(chan error, 1)
	go func() {
		_, err := a.Ticket(t.Context(), ref)
		aDone <- err
	}()
	// Once a has passed the Retry-After on to the budget (the row is more
	// than a second ahead of the database's clock)...
	require.Eventually(t, func() bool {
		var ahead float64
		err := dbB.Writer().QueryRowContext(t.Context(), `SELECT tat - EXTRACT(EPOCH FROM clock_timestamp()) * 1000000 FROM rate_budget WHERE integration_id = $1`,
			in.ID).Scan(&ahead)
		return err == nil && ahead > 1e6
	}, 5*time.Second, 5*time.Millisecond)
	// b, another process, asks meanwhile: it waits for the pause too.
	_, err = b.Ticket(t.Context(), ref)
	require.True(t, itsm.IsKind(err, itsm.KindNotFound), "%v", err)
	require.True(t, itsm.IsKind(<-aDone, itsm.KindNotFound))
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, arrivals, 3)
	for _, at := range arrivals[1:] {
		require.GreaterOrEqual(t, at.Sub(arrivals[0]), 1900*time.Millisecond, "a request within the Retry-After")
	}
}

package ticketsync_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/auth/authtest"
	"github.com/stewardhq/steward/internal/config"
	"github.com/stewardhq/steward/internal/secret"
	"github.com/stewardhq/steward/internal/server"
	"github.com/stewardhq/steward/internal/snowemu"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/ticketsync"
)

// BenchmarkWebhookToApplied measures ServiceNow → Steward latency end to
// end on loopback: an agent changes a ticket in the emulator, its business
// rule posts the signed webhook (steward scheme), Steward verifies it and
// records it pending, the drainer re-reads pending records through the
// Table API (sys_idIN batches) and applies each batch. Each change is timed from the emulator's write to the
// moment Steward's store holds the new sys_mod_count. Poll and reconcile
// are a day away, so only the webhook can apply a change.
//
// Sub-benchmarks: Paced makes one change every 20 ms (about 50 changes/s,
// an agent team's busiest hour many times over); Burst makes all changes at
// once (a bulk update in ServiceNow) with the emulator delivering one
// webhook at a time; BurstConcurrent delivers them concurrently, as an
// instance's several scheduler workers run async rules in parallel.
//
//	go test -run '^$' -bench WebhookToApplied -benchtime 1x ./internal/ticketsync/
func BenchmarkWebhookToApplied(b *testing.B) {
	const n = 250
	for _, mode := range []struct {
		name       string
		gap        time.Duration
		concurrent bool
	}{{"Paced", 20 * time.Millisecond, false}, {"Burst", 0, false}, {"BurstConcurrent", 0, true}} {
		b.Run(mode.name, func(b *testing.B) {
			for b.Loop() {
				opts := snowemu.Options{AdminPassword: emuPassword}
				if mode.concurrent {
					// Reordering sends each delivery from its own goroutine
					// after a random delay in [0, window).
					opts.WebhookReorder, opts.WebhookReorderWindow = true, time.Millisecond
				}
				env := newWebhookBench(b, n, opts)
				readsBefore := env.reads()
				lat := env.run(b, mode.gap)
				reads := env.reads() - readsBefore
				slices.Sort(lat)
				pct := func(p float64) float64 {
					return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
				}
				b.ReportMetric(pct(0.50), "p50-ms")
				b.ReportMetric(pct(0.90), "p90-ms")
				b.ReportMetric(pct(0.99), "p99-ms")
				b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
				b.ReportMetric(env.answerMillis(b), "webhook-202-mean-ms")
				b.ReportMetric(float64(reads), "table-reads")
				env.close()
			}
		})
	}
}

type webhookBench struct {
	emu     *snowemu.Emulator
	hs      *httptest.Server
	srv     *server.Server
	tickets []*steward.Ticket
}

// newWebhookBench starts an emulator and Steward with n created incidents
// and the emulator's webhook pointed at Steward.
func newWebhookBench(b *testing.B, n int, opts snowemu.Options) *webhookBench {
	b.Helper()
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	emu := snowemu.New(opts, discard)
	hs := httptest.NewServer(emu)
	cfg := config.Default()
	cfg.Addr = "127.0.0.1:0"
	cfg.DatabaseURL = filepath.Join(b.TempDir(), "steward.db")
	srv, err := server.New(b.Context(), cfg, discard)
	require.NoError(b, err)
	require.NoError(b, srv.Start(b.Context()))
	env := &webhookBench{emu: emu, hs: hs, srv: srv}

	var obs []steward.Observation
	var rows []string
	for i := range n {
		rows = append(rows, fmt.Sprintf(`{"resource":{"id":"/subscriptions/s1/vm%d","cloud":"azure"},"recommendation":{"key":"disk-encryption","severity":"High"},"status":"Unhealthy"}`, i))
	}
	require.NoError(b, parseSteward(b.Context(), []byte(`{"assessments":[`+strings.Join(rows, ",")+`]}`), &obs))
	_, err = srv.Ingester.ApplyBatch(b.Context(), obs)
	require.NoError(b, err)
	in := &steward.Integration{Name: "bench", Scope: "/subscriptions/s1", InstanceURL: hs.URL, Local: true,
		AuthMode: steward.AuthBasic, Username: "admin", RequestsPerSecond: 1000,
		Sync: steward.SyncSettings{PollInterval: steward.Duration(24 * time.Hour), ReconcileInterval: steward.Duration(24 * time.Hour)}}
	require.NoError(b, srv.Tickets.CreateIntegration(b.Context(), in,
		store.IntegrationSecrets{Password: secret.New(emuPassword), WebhookSecret: secret.New(webhookSecret)}, false, "bench"))
	assessments, _, err := srv.DB.FindAssessments(b.Context(), store.AssessmentFilter{Limit: n})
	require.NoError(b, err)
	var ids []int64
	for _, a := range assessments {
		as, err := srv.Tickets.Assign(b.Context(), ticketsync.AssignRequest{AssessmentID: a.ID, TicketType: steward.TicketTypeIncident,
			AssignedTo: owner, DueDate: time.Now().AddDate(0, 0, 30)}, "bench")
		require.NoError(b, err)
		ids = append(ids, as.ID)
	}
	for _, id := range ids {
		for {
			t, err := srv.DB.FindTicketByAssignment(b.Context(), id)
			require.NoError(b, err)
			if t.Status == steward.TicketCreated {
				env.tickets = append(env.tickets, t)
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	// Wired after creation, so the inserts' deliveries don't count.
	require.NoError(b, emu.AddWebhook(snowemu.Webhook{URL: fmt.Sprintf("%s/api/v1/integrations/%d/events", srv.URL(), in.ID),
		Secret: webhookSecret, Scheme: snowemu.SchemeSteward}))
	return env
}

// run makes one agent change per ticket, gap apart, and returns each
// change's latency from the emulator's write to Steward's store.
func (env *webhookBench) run(b *testing.B, gap time.Duration) []time.Duration {
	b.Helper()
	lat := make([]time.Duration, len(env.tickets))
	var wg sync.WaitGroup
	for i, t := range env.tickets {
		agent := []string{"david.loo", "fred.luddy", "abel.tuter"}[i%3]
		start := time.Now()
		rec, err := env.emu.Reassign("incident", t.SysID, agent, "beth.anglin")
		require.NoError(b, err)
		want, _ := strconv.Atoi(rec["sys_mod_count"])
		wg.Go(func() {
			for {
				cur, err := env.srv.DB.FindTicketByAssignment(context.Background(), t.AssignmentID)
				if err == nil && cur.ModCount >= want {
					lat[i] = time.Since(start)
					return
				}
				if time.Since(start) > 30*time.Second {
					lat[i] = time.Since(start)
					b.Errorf("ticket %s not applied within 30 s", t.Number)
					return
				}
				// Every 5 ms: 250 waiters at 1 ms starved the store's
				// reader pool the webhook and the drainer read through.
				time.Sleep(5 * time.Millisecond)
			}
		})
		if gap > 0 {
			time.Sleep(gap)
		}
	}
	wg.Wait()
	for _, d := range env.emu.WebhookDeliveries() {
		require.Equal(b, 202, d.Status, d.Error)
	}
	return lat
}

// reads counts the emulator's incident reads (lists and single records).
func (env *webhookBench) reads() int {
	n := 0
	for k, v := range env.emu.Requests() {
		if strings.HasPrefix(k, "GET /api/now/table/incident") {
			n += v
		}
	}
	return n
}

// answerMillis is the mean time Steward took to answer a delivery 202,
// from its own HTTP metrics.
func (env *webhookBench) answerMillis(b *testing.B) float64 {
	b.Helper()
	raw, err := httpGet(env.srv.URL()+"/metrics", authtest.Token(b, env.srv.DB, fmt.Sprintf("metrics-%d", time.Now().UnixNano()), steward.RoleReader))
	require.NoError(b, err)
	var sum, count float64
	for _, line := range strings.Split(raw, "\n") {
		if !strings.Contains(line, `route="/api/v1/integrations/{id}/events"`) || !strings.Contains(line, `code="202"`) {
			continue
		}
		fields := strings.Fields(line)
		v, _ := strconv.ParseFloat(fields[len(fields)-1], 64)
		switch {
		case strings.HasPrefix(line, "steward_http_request_duration_seconds_sum"):
			sum = v
		case strings.HasPrefix(line, "steward_http_request_duration_seconds_count"):
			count = v
		}
	}
	require.NotZero(b, count)
	return sum / count * 1000
}

func (env *webhookBench) close() {
	_ = env.srv.Shutdown(context.Background())
	env.hs.Close()
	_ = env.emu.Close()
}

package ticketsync_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/config"
	"github.com/stewardhq/steward/internal/secret"
	"github.com/stewardhq/steward/internal/server"
	"github.com/stewardhq/steward/internal/snowemu"
	"github.com/stewardhq/steward/internal/source/stewardjson"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/pgtest"
	"github.com/stewardhq/steward/internal/ticketsync"
)

// BenchmarkCreateTickets measures ticket creation end to end: 10,000
// ServiceNow-type assignments are queued while the workers are stopped,
// then the workers start and the clock runs until every ticket exists in
// the emulator, which answers each request after 50 ms (a realistic
// instance). It reports tickets per second and HTTP requests per ticket,
// token requests excluded (target: at most 1.05 when nothing fails).
//
//	go test -run '^$' -bench CreateTickets -benchtime 1x ./internal/ticketsync/
func BenchmarkCreateTickets(b *testing.B) {
	const n = 10_000
	for b.Loop() {
		emu := snowemu.New(snowemu.Options{AdminPassword: emuPassword}, slog.New(slog.NewTextHandler(io.Discard, nil)))
		hs := httptest.NewServer(emu)
		cfg := config.Default()
		cfg.Addr = "127.0.0.1:0"
		benchDatabase(b, &cfg)
		srv, err := server.New(b.Context(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		require.NoError(b, err)

		var rows []map[string]any
		for i := range n {
			rows = append(rows, map[string]any{
				"resource":       map[string]any{"id": fmt.Sprintf("/subscriptions/s1/vm%d", i), "cloud": "azure"},
				"recommendation": map[string]any{"key": "disk-encryption", "severity": "High"},
				"status":         "Unhealthy",
			})
		}
		body, _ := json.Marshal(map[string]any{"assessments": rows})
		var obs []steward.Observation
		require.NoError(b, parseSteward(b.Context(), body, &obs))
		_, err = srv.Ingester.ApplyBatch(b.Context(), obs)
		require.NoError(b, err)

		in := &steward.Integration{Name: "bench", Scope: "/subscriptions/s1", InstanceURL: hs.URL, Local: true,
			AuthMode: steward.AuthBasic, Username: "admin", RequestsPerSecond: 1000}
		require.NoError(b, srv.Tickets.CreateIntegration(b.Context(), in,
			store.IntegrationSecrets{Password: secret.New(emuPassword)}, false, "bench"))
		var assessments []int64
		cursor := ""
		for {
			page, next, err := srv.DB.FindAssessments(b.Context(), store.AssessmentFilter{Cursor: cursor, Limit: 500})
			require.NoError(b, err)
			for _, a := range page {
				assessments = append(assessments, a.ID)
			}
			if cursor = next; cursor == "" {
				break
			}
		}
		for _, id := range assessments {
			_, err := srv.Tickets.Assign(b.Context(), ticketsync.AssignRequest{AssessmentID: id, TicketType: steward.TicketTypeIncident,
				AssignedTo: owner, DueDate: time.Now().AddDate(0, 0, 30)}, "bench")
			require.NoError(b, err)
		}
		emu.SetFaults(snowemu.Faults{Latency: 50 * time.Millisecond})
		before := emu.TotalRequests()

		start := time.Now()
		require.NoError(b, srv.Start(b.Context()))
		for emu.Count("incident") < n || pendingTickets(b, srv) > 0 {
			time.Sleep(20 * time.Millisecond)
		}
		elapsed := time.Since(start)

		requests := emu.TotalRequests() - before
		for key, count := range emu.Requests() {
			if strings.Contains(key, "oauth_token") {
				requests -= count
			}
		}
		require.Equal(b, n, emu.Count("incident"))
		b.ReportMetric(float64(n)/elapsed.Seconds(), "tickets/s")
		b.ReportMetric(float64(requests)/n, "requests/ticket")
		b.ReportMetric(elapsed.Seconds(), "s/10k-tickets")
		require.NoError(b, srv.Shutdown(context.Background()))
		hs.Close()
		_ = emu.Close()
	}
}

func pendingTickets(b *testing.B, srv *server.Server) int {
	pending := 0
	for _, st := range []steward.TicketStatus{steward.TicketPending, steward.TicketRetrying} {
		items, _, err := srv.DB.FindTickets(b.Context(), store.TicketFilter{Status: st, Limit: 1})
		require.NoError(b, err)
		pending += len(items)
	}
	return pending
}

var stewardParser = stewardjson.Parser{}

func parseSteward(ctx context.Context, body []byte, out *[]steward.Observation) error {
	return stewardParser.Parse(ctx, bytes.NewReader(body), func(o steward.Observation) error {
		*out = append(*out, o)
		return nil
	})
}

// benchDatabase points cfg at the benchmark's database: a SQLite file, or
// with STEWARD_BENCH_STORE=postgres a fresh PostgreSQL database on the
// server STEWARD_TEST_POSTGRES_URL names (with the shared secret key a
// PostgreSQL database needs), so one benchmark measures both stores.
func benchDatabase(b *testing.B, cfg *config.Config) {
	b.Helper()
	switch os.Getenv("STEWARD_BENCH_STORE") {
	case "", "sqlite":
		cfg.DatabaseURL = filepath.Join(b.TempDir(), "steward.db")
	case "postgres":
		cfg.DatabaseURL = pgtest.URL(b)
		cfg.SecretKey = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
		cfg.SpoolDir = filepath.Join(b.TempDir(), "spool")
	default:
		b.Fatalf("STEWARD_BENCH_STORE is sqlite or postgres, not %q", os.Getenv("STEWARD_BENCH_STORE"))
	}
}

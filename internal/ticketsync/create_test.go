package ticketsync_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
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

// TestConcurrentCreatesShareTransactions queues 50 tickets while the job
// workers are stopped, then starts them all at once against an instance
// that answers the 50 creations together once all have arrived, with one
// ticket's row made to refuse its result (already linked to another
// record). Every other ticket gets exactly one record, created by one
// request, and its job completed; the refused one fails alone (its record
// exists once, its job is not completed); each attempt was committed
// before its request; and the 50 results were committed in fewer
// transactions than there are tickets.
func TestConcurrentCreatesShareTransactions(t *testing.T) {
	t.Parallel()
	const n = 50
	emu := snowemu.New(snowemu.Options{AdminPassword: emuPassword}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(func() { _ = emu.Close() })
	// ServiceNow holds every creation until all n have arrived (each
	// after its attempt was committed), then answers them at once: the
	// results come back together, as they do under load.
	arrived, release := make(chan struct{}), make(chan struct{})
	var posts atomic.Int32
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/table/incident") {
			if posts.Add(1) == n {
				close(arrived)
			}
			<-release
		}
		emu.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	cfg := config.Default()
	cfg.Addr = "127.0.0.1:0"
	cfg.DatabaseURL = testDatabaseURL(t)
	if store.IsPostgresURL(cfg.DatabaseURL) {
		cfg.SecretKey = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{5}, 32))
		cfg.SpoolDir = filepath.Join(t.TempDir(), "spool")
	}
	cfg.ShutdownTimeout = 5 * time.Second
	logs := &syncBuffer{}
	srv, err := server.New(t.Context(), cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = srv.Shutdown(context.Background())
		if t.Failed() {
			t.Log(lastLines(logs.String(), 60))
		}
	})

	var rows []map[string]any
	for i := range n {
		rows = append(rows, map[string]any{
			"resource":       map[string]any{"id": fmt.Sprintf("/subscriptions/s1/vm%d", i), "cloud": "azure"},
			"recommendation": map[string]any{"key": "disk-encryption", "severity": "High"},
			"status":         "Unhealthy",
		})
	}
	body, err := json.Marshal(map[string]any{"assessments": rows})
	require.NoError(t, err)
	var obs []steward.Observation
	require.NoError(t, parseSteward(t.Context(), body, &obs))
	_, err = srv.Ingester.ApplyBatch(t.Context(), obs)
	require.NoError(t, err)
	in := &steward.Integration{Name: "concurrent", Scope: "/subscriptions/s1", InstanceURL: hs.URL, Local: true,
		AuthMode: steward.AuthBasic, Username: "admin", RequestsPerSecond: 1000}
	require.NoError(t, srv.Tickets.CreateIntegration(t.Context(), in, store.IntegrationSecrets{Password: secret.New(emuPassword)}, false, "test"))
	page, _, err := srv.DB.FindAssessments(t.Context(), store.AssessmentFilter{Limit: n})
	require.NoError(t, err)
	require.Len(t, page, n)
	var assignments []int64
	for _, as := range page {
		a, err := srv.Tickets.Assign(t.Context(), ticketsync.AssignRequest{AssessmentID: as.ID, TicketType: steward.TicketTypeIncident,
			AssignedTo: owner, DueDate: time.Now().AddDate(0, 0, 30)}, "test")
		require.NoError(t, err)
		assignments = append(assignments, a.ID)
	}
	refused := assignments[n/2]
	_, err = srv.DB.Writer().ExecContext(t.Context(), srv.DB.Bind(`UPDATE ticket SET sys_id = 'another-record' WHERE assignment_id = ?`), refused)
	require.NoError(t, err)
	token := authtest.Token(t, srv.DB, "ops@example.com", steward.RoleOwner)
	writes := func() (attempts, results, txs int) {
		resp, err := httpGet(srv.URL()+"/metrics", token)
		require.NoError(t, err)
		return metric(t, resp, `steward_ticket_writes_total{write="attempt"}`), metric(t, resp, `steward_ticket_writes_total{write="result"}`),
			metric(t, resp, `steward_ticket_write_transactions_total`)
	}

	require.NoError(t, srv.Start(t.Context()))
	select {
	case <-arrived:
	case <-time.After(time.Minute):
		close(release)
		require.FailNow(t, "the creations did not all arrive", "%d of %d", posts.Load(), n)
	}
	attempts, results, attemptTxs := writes()
	require.Equal(t, n, attempts, "every attempt is committed before its request")
	require.Zero(t, results)
	close(release)

	tickets := map[int64]*steward.Ticket{}
	var (
		refusedTicket *steward.Ticket
		states        map[string]int
		lastErr       error
	)
	ok := assert.Eventually(t, func() bool {
		for _, id := range assignments {
			tk, err := srv.DB.FindTicketByAssignment(t.Context(), id)
			if err != nil {
				lastErr = err
				return false
			}
			switch {
			case id == refused:
				refusedTicket = tk
			case tk.Status == steward.TicketCreated:
				tickets[id] = tk
			}
		}
		// The refused ticket's try is over once River has recorded its
		// job's failure (a retry, after a backoff of seconds, fails too).
		var err error
		if states, err = jobStates(t.Context(), srv); err != nil {
			lastErr = err
			return false
		}
		return len(tickets) == n-1 && states["retryable"] == 1
	}, 60*time.Second, 50*time.Millisecond)
	require.True(t, ok, "last error: %v", lastErr)
	require.Equal(t, map[string]int{"completed": n - 1, "retryable": 1}, states,
		"every job but the refused one's completed with its result")

	for id, tk := range tickets {
		recs := emu.FindByCorrelationID("incident", tk.CorrelationID)
		require.Len(t, recs, 1, "assignment %d", id)
		require.Equal(t, tk.SysID, recs[0]["sys_id"])
		require.Equal(t, 1, tk.Attempts, "assignment %d", id)
	}
	require.NotEqual(t, steward.TicketCreated, refusedTicket.Status)
	require.Equal(t, "another-record", refusedTicket.SysID)
	require.Len(t, emu.FindByCorrelationID("incident", refusedTicket.CorrelationID), 1, "the refused ticket's record exists once")
	require.Equal(t, n, emu.Count("incident"))
	require.Equal(t, n, int(posts.Load()), "one POST per ticket")

	attempts, results, txs := writes()
	require.GreaterOrEqual(t, attempts, n)
	require.GreaterOrEqual(t, results, n)
	require.LessOrEqual(t, attemptTxs, n)
	require.Less(t, txs-attemptTxs, n, "the %d results answered at once were committed in %d transactions", results, txs-attemptTxs)
	t.Logf("%d attempts in %d transactions, then %d results in %d", n, attemptTxs, results, txs-attemptTxs)
}

// jobStates counts the ticket_create jobs by state.
func jobStates(ctx context.Context, srv *server.Server) (map[string]int, error) {
	rows, err := srv.DB.Writer().QueryContext(ctx, `SELECT state, count(*) FROM river_job WHERE kind = 'ticket_create' GROUP BY state`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var state string
		var count int
		if err := rows.Scan(&state, &count); err != nil {
			return nil, err
		}
		out[state] = count
	}
	return out, rows.Err()
}

// metric reads one sample of a counter from a /metrics answer.
func metric(t *testing.T, text, name string) int {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\d+)$`).FindStringSubmatch(text)
	require.NotNil(t, m, "%s not in /metrics", name)
	v, err := strconv.Atoi(m[1])
	require.NoError(t, err)
	return v
}

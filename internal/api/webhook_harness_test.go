package api

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/itsm"
	"github.com/stewardhq/steward/internal/jobs"
	"github.com/stewardhq/steward/internal/secret"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
	"github.com/stewardhq/steward/internal/ticketsync"
)

// testClock is a settable clock shared by the API and the store.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// lockedBuffer collects log lines written by concurrent handlers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// webhookHarness is a real API on a temporary SQLite store with one
// integration that has a webhook secret and one linked incident (the
// documented delivery's record, at sys_mod_count 3). Jobs are inserted by
// an insert-only River client and never worked; the ITSM is never called.
type webhookHarness struct {
	api     *API
	db      *store.DB
	tickets *ticketsync.Service
	clock   *testClock
	reg     *prometheus.Registry
	logs    *lockedBuffer
	in      *steward.Integration
}

// The documented delivery's record (docs/servicenow-setup.md §3.2).
const (
	docSysID         = "5b8bc39634516f7d9e074feb54075d01"
	docCorrelationID = "steward-fd6b156b134611bf-1"
)

func newWebhookHarness(tb testing.TB, webhookSecret string, at time.Time, cfg ticketsync.Config) *webhookHarness {
	tb.Helper()
	ctx := tb.Context()
	clock := &testClock{t: at}
	db := storetest.MustOpen(tb)
	// Set before anything runs: nothing reads the clock concurrently yet.
	db.Now = clock.Now
	in := storetest.Integration(tb, db, "emulator", "/subscriptions/s1")
	ws := secret.New(webhookSecret)
	require.NoError(tb, db.WithTx(ctx, func(tx *store.Tx) error {
		_, err := tx.UpdateIntegration(ctx, in.ID, store.IntegrationUpdate{WebhookSecret: &ws}, "tester@example.com")
		return err
	}))
	as := storetest.Assessment(tb, db, "disk-encryption", "/subscriptions/s1/vm1", steward.StatusUnhealthy)
	storetest.LinkTickets(tb, db, in.ID, []storetest.LinkSpec{{
		AssessmentID: as.ID, Type: steward.TicketTypeIncident, Table: "incident", CorrelationID: docCorrelationID,
		SysID: docSysID, Number: "INC0010001", Owner: "beth.anglin@example.com", RemoteUpdatedAt: at, ModCount: 3,
	}})

	queue := jobs.NewQueue()
	rc, err := river.NewClient(db.RiverDriver(), &river.Config{})
	require.NoError(tb, err)
	queue.Bind(rc)

	logs := &lockedBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	reg := prometheus.NewRegistry()
	noITSM := func(*steward.Integration, store.IntegrationSecrets) (itsm.Provider, error) {
		return nil, errors.New("no ITSM in this test")
	}
	tickets := ticketsync.New(cfg, db, queue, noITSM, logger, reg)
	a := New(Config{}, Deps{DB: db, Queue: queue, Tickets: tickets}, logger, reg)
	a.now = clock.Now
	return &webhookHarness{api: a, db: db, tickets: tickets, clock: clock, reg: reg, logs: logs, in: in}
}

// replaceWebhookSecret sets a new webhook secret the way PATCH
// /api/v1/integrations/{id} does.
func (h *webhookHarness) replaceWebhookSecret(tb testing.TB, s string) {
	tb.Helper()
	v := secret.New(s)
	_, err := h.tickets.UpdateIntegration(tb.Context(), h.in.ID, store.IntegrationUpdate{WebhookSecret: &v}, false, "tester@example.com")
	require.NoError(tb, err)
}

// rejectedCount reads steward_sync_events_total{result="rejected"}.
func (h *webhookHarness) rejectedCount(tb testing.TB) float64 {
	tb.Helper()
	families, err := h.reg.Gather()
	require.NoError(tb, err)
	for _, mf := range families {
		if mf.GetName() != "steward_sync_events_total" {
			continue
		}
		total := 0.0
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == "rejected" {
					total += m.GetCounter().GetValue()
				}
			}
		}
		return total
	}
	return 0
}

// signDelivery is the business rule's signature.
func signDelivery(key, ts string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// documentedDelivery is the delivery shown in docs/servicenow-setup.md
// §3.2, signed with the secret "s3cret".
func documentedDelivery(tb testing.TB) (ts, sig string, body []byte) {
	tb.Helper()
	doc, err := os.ReadFile("../../docs/servicenow-setup.md")
	require.NoError(tb, err)
	m := regexp.MustCompile("(?s)```http\n(.*?)\n```").FindSubmatch(doc)
	require.NotNil(tb, m, "the doc shows a delivery")
	head, b, ok := strings.Cut(string(m[1]), "\n\n")
	require.True(tb, ok)
	for _, line := range strings.Split(head, "\n")[1:] {
		k, v, _ := strings.Cut(line, ": ")
		switch k {
		case headerTimestamp:
			ts = v
		case headerSignature:
			sig = v
		}
	}
	require.NotEmpty(tb, ts)
	return ts, sig, []byte(b)
}

func unixTime(tb testing.TB, ts string) time.Time {
	tb.Helper()
	sec, err := strconv.ParseInt(ts, 10, 64)
	require.NoError(tb, err)
	return time.Unix(sec, 0).UTC()
}

// post sends one delivery to url over HTTP and returns the status.
func post(ctx context.Context, tb testing.TB, client *http.Client, url, ts, sig string, body []byte) (int, string) {
	tb.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	require.NoError(tb, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(headerTimestamp, ts)
	req.Header.Set(headerSignature, sig)
	resp, err := client.Do(req)
	require.NoError(tb, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

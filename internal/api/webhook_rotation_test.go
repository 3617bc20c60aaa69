package api

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward/internal/ticketsync"
)

// TestWebhookSecretRotationGrace: after the webhook secret is replaced, the
// instance may still sign with the old one until someone changes its
// property; those deliveries are accepted for the grace window (default
// 1 h) and refused after it. The new secret works throughout.
func TestWebhookSecretRotationGrace(t *testing.T) {
	t.Parallel()
	_, _, body := documentedDelivery(t)
	h := newWebhookHarness(t, "old-secret-must-not-leak", time.Date(2026, 11, 25, 22, 0, 0, 0, time.UTC), ticketsync.Config{})
	srv := httptest.NewServer(h.api)
	t.Cleanup(srv.Close)
	url := fmt.Sprintf("%s/api/v1/integrations/%d/events", srv.URL, h.in.ID)
	deliver := func(key string) (int, string) {
		ts := strconv.FormatInt(h.clock.Now().Unix(), 10)
		return post(t.Context(), t, srv.Client(), url, ts, signDelivery(key, ts, body), body)
	}
	requireStatus := func(key string, want int, when string) {
		t.Helper()
		got, answer := deliver(key)
		require.Equal(t, want, got, "%s: %s", when, answer)
	}

	requireStatus("old-secret-must-not-leak", http.StatusAccepted, "before the change")
	h.replaceWebhookSecret(t, "new-secret-must-not-leak")
	requireStatus("new-secret-must-not-leak", http.StatusAccepted, "new, at once")
	requireStatus("old-secret-must-not-leak", http.StatusAccepted, "old, at once")
	requireStatus("some-other-secret", http.StatusUnauthorized, "a wrong secret is still wrong")

	h.clock.Advance(59*time.Minute + 59*time.Second)
	requireStatus("old-secret-must-not-leak", http.StatusAccepted, "old, just inside the hour")
	requireStatus("new-secret-must-not-leak", http.StatusAccepted, "new, inside the hour")

	h.clock.Advance(time.Second)
	requireStatus("old-secret-must-not-leak", http.StatusUnauthorized, "old, once the hour is over")
	requireStatus("new-secret-must-not-leak", http.StatusAccepted, "new, after the hour")

	// Setting the same secret again does not restart the window of the
	// one it replaced.
	h.replaceWebhookSecret(t, "new-secret-must-not-leak")
	requireStatus("old-secret-must-not-leak", http.StatusUnauthorized, "old, after re-setting the new one")

	// A second change: only the secret just replaced keeps working.
	h.replaceWebhookSecret(t, "third-secret-must-not-leak")
	requireStatus("third-secret-must-not-leak", http.StatusAccepted, "third")
	requireStatus("new-secret-must-not-leak", http.StatusAccepted, "second, in its own window")
	requireStatus("old-secret-must-not-leak", http.StatusUnauthorized, "first, long replaced")

	for _, s := range []string{"old-secret-must-not-leak", "new-secret-must-not-leak", "third-secret-must-not-leak"} {
		require.NotContains(t, h.logs.String(), s)
	}
	require.NotContains(t, strings.ToLower(h.logs.String()), "previous", "the log does not say which secret matched")
}

func TestWebhookSecretGraceConfigurable(t *testing.T) {
	t.Parallel()
	_, _, body := documentedDelivery(t)
	for _, tc := range []struct {
		name      string
		grace     time.Duration
		after     time.Duration
		wantAfter int
	}{
		{"Shorter", 10 * time.Minute, 10 * time.Minute, http.StatusUnauthorized},
		{"Longer", 3 * time.Hour, 2 * time.Hour, http.StatusAccepted},
		{"None", -1, 0, http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newWebhookHarness(t, "old", time.Date(2026, 11, 25, 22, 0, 0, 0, time.UTC), ticketsync.Config{WebhookSecretGrace: tc.grace})
			srv := httptest.NewServer(h.api)
			t.Cleanup(srv.Close)
			url := fmt.Sprintf("%s/api/v1/integrations/%d/events", srv.URL, h.in.ID)
			h.replaceWebhookSecret(t, "new")
			h.clock.Advance(tc.after)
			ts := strconv.FormatInt(h.clock.Now().Unix(), 10)
			got, answer := post(t.Context(), t, srv.Client(), url, ts, signDelivery("old", ts, body), body)
			require.Equal(t, tc.wantAfter, got, answer)
		})
	}
}

// TestWebhookRefusalLogBounded: a flood of bad deliveries leaves a bounded
// number of "webhook refused" lines, the next line after the limit says how
// many were left out, and the metric still counts every refusal.
func TestWebhookRefusalLogBounded(t *testing.T) {
	t.Parallel()
	ts, _, body := documentedDelivery(t)
	h := newWebhookHarness(t, "s3cret", unixTime(t, ts), ticketsync.Config{})
	srv := httptest.NewServer(h.api)
	t.Cleanup(srv.Close)
	url := fmt.Sprintf("%s/api/v1/integrations/%d/events", srv.URL, h.in.ID)

	const n = 1000
	for i := range n {
		got, answer := post(t.Context(), t, srv.Client(), url, ts, signDelivery(fmt.Sprint("wrong-", i), ts, body), body)
		require.Equal(t, http.StatusUnauthorized, got, answer)
	}
	lines := strings.Count(h.logs.String(), "webhook refused")
	require.LessOrEqual(t, lines, 10, "1,000 refusals must not mean 1,000 log lines")
	require.Positive(t, lines, "refusals are still logged")
	require.Equal(t, float64(n), h.rejectedCount(t), "the metric counts every refusal")

	// Unknown integrations share one limit: random IDs cannot grow it.
	for i := range n {
		got, _ := post(t.Context(), t, srv.Client(), fmt.Sprintf("%s/api/v1/integrations/%d/events", srv.URL, 1000+i), ts, "x", body)
		require.Equal(t, http.StatusNotFound, got)
	}
	require.LessOrEqual(t, strings.Count(h.logs.String(), "webhook refused"), 2*10)

	// Later, the next refusal is logged again with the count left out.
	h.clock.Advance(time.Minute)
	got, _ := post(t.Context(), t, srv.Client(), url, strconv.FormatInt(h.clock.Now().Unix(), 10), "bm90IGEgc2lnbmF0dXJl", body)
	require.Equal(t, http.StatusUnauthorized, got)
	last := h.logs.String()
	last = last[strings.LastIndex(strings.TrimRight(last, "\n"), "\n")+1:]
	require.Contains(t, last, "webhook refused")
	require.Contains(t, last, fmt.Sprintf("suppressed=%d", n-lines))
	require.NotContains(t, h.logs.String(), "s3cret")
}

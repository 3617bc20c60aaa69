package web_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
)

// TestSourcesInBrowser: the Sources page lists a live source with its
// latest run, which it follows until done; a security-admin asks for a
// run and sees it finish; a reader sees no Run now and is refused posting
// one anyway.
func TestSourcesInBrowser(t *testing.T) {
	b := startUI(t)
	ctx := t.Context()

	// A local Security Hub serving the real ASFF sample (testdata/asff).
	raw, err := os.ReadFile("../../testdata/asff/asff_sample.json")
	require.NoError(t, err)
	var doc struct{ Findings []json.RawMessage }
	require.NoError(t, json.Unmarshal(raw, &doc))
	hub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"Findings": doc.Findings})
	}))
	t.Cleanup(hub.Close)
	name, kind, scope, schedule := "aws-prod", steward.SourceSecurityHub, steward.Scope("/aws/accounts/123456789123"), "24h"
	settings, err := json.Marshal(map[string]any{"regions": []string{"us-east-1"}, "endpoint": hub.URL, "local": true})
	require.NoError(t, err)
	src, err := b.client.CreateSource(ctx, steward.SourceInput{Name: &name, Kind: &kind, Scope: &scope, Schedule: &schedule,
		Settings: settings, Secrets: map[string]string{"access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": "not-a-real-secret-key"}})
	require.NoError(t, err)
	row := "#source-" + strconv.FormatInt(src.ID, 10)
	_, err = b.client.RunSource(ctx, name)
	require.NoError(t, err)

	admin := b.tokenFor(t, "secops", steward.RoleSecurityAdmin)
	bctx := newBrowser(t)
	signIn(t, bctx, b, admin)
	run(t, bctx, chromedp.Navigate(b.url+"/settings/sources"), chromedp.WaitVisible(row, chromedp.ByQuery))
	// The page follows the first run (queued or running: it refreshes).
	waitText(t, bctx, row+" .run-state", "done", 60*time.Second)
	require.Contains(t, textOf(t, bctx, row), "18", "the sample's 18 findings were read")
	checkA11y(t, bctx, "sources")
	screenshot(t, bctx, "sources")

	runs, err := b.client.ListSourceRuns(ctx, name, 5)
	require.NoError(t, err)
	before := len(runs.Items)
	run(t, bctx, chromedp.Click(row+" button", chromedp.ByQuery), chromedp.WaitVisible(`p.notice`, chromedp.ByQuery))
	require.Eventually(t, func() bool {
		runs, err := b.client.ListSourceRuns(ctx, name, 5)
		require.NoError(t, err)
		return len(runs.Items) == before+1 && runs.Items[0].State == steward.SourceRunDone
	}, 60*time.Second, 100*time.Millisecond, "the asked-for run finishes")
	waitText(t, bctx, row+" .run-state", "done", 30*time.Second)
	require.Equal(t, "secops", mustRuns(t, b, name)[0].RequestedBy)

	// A reader sees the list but no Run now, and posting one is refused.
	reader := b.tokenFor(t, "viewer", steward.RoleReader)
	rctx := newBrowser(t)
	signIn(t, rctx, b, reader)
	run(t, rctx, chromedp.Navigate(b.url+"/settings/sources"), chromedp.WaitVisible(row, chromedp.ByQuery))
	var buttons int
	run(t, rctx, chromedp.Evaluate(`document.querySelectorAll("#sources-list button").length`, &buttons))
	require.Zero(t, buttons)
	run(t, rctx, chromedp.Evaluate(`(() => { const f = document.createElement("form"); f.method = "post";
		f.action = "/settings/sources/`+strconv.FormatInt(src.ID, 10)+`/run"; document.body.appendChild(f); f.submit(); })()`, nil),
		chromedp.WaitVisible(`main h1`, chromedp.ByQuery))
	waitText(t, rctx, "main", "needs the security-admin role", 20*time.Second)
	require.Len(t, mustRuns(t, b, name), before+1, "the reader's post queued nothing")
}

func mustRuns(t *testing.T, b *uiBundle, name string) []steward.SourceRun {
	t.Helper()
	runs, err := b.client.ListSourceRuns(t.Context(), name, 10)
	require.NoError(t, err)
	return runs.Items
}

package web_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/apiclient"
	"github.com/stewardhq/steward/internal/auth/authtest"
)

func auditPtr[T any](v T) *T { return &v }

// TestAuditInBrowser: after a few actions by two people the audit log
// shows them newest first with their actor, action, target and details;
// the action-prefix and integration filters narrow it; older events are
// a page away (cursor paging); a scope-limited sign-in gets the API's 403
// and no Audit log link.
func TestAuditInBrowser(t *testing.T) {
	b := startUI(t)
	ctx := newBrowser(t)
	signIn(t, ctx, b, b.token)

	// A security-admin creates an integration through the API.
	secadmin, err := apiclient.New(b.url, b.tokenFor(t, "secadmin@example.com", steward.RoleSecurityAdmin))
	require.NoError(t, err)
	in, err := secadmin.CreateIntegration(t.Context(), apiclient.IntegrationRequest{
		Name: auditPtr("emulator"), Scope: auditPtr("/aws"), InstanceURL: auditPtr(b.emuURL), Local: auditPtr(true),
		AuthMode: auditPtr("basic"), Username: auditPtr("admin"), Password: auditPtr("admin"),
	})
	require.NoError(t, err)

	// The owner creates a token in the UI.
	run(t, ctx,
		chromedp.Navigate(b.url+"/settings/tokens"),
		chromedp.WaitVisible(`#name`, chromedp.ByID),
		chromedp.SendKeys(`#name`, "audited-reader", chromedp.ByID),
		chromedp.Click(`#token-form button[type=submit]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#secret`, chromedp.ByID),
	)

	run(t, ctx, chromedp.Navigate(b.url+"/audit"), chromedp.WaitVisible(`#audit-events`, chromedp.ByID))
	rows := auditRowsText(t, ctx)
	require.GreaterOrEqual(t, len(rows), 2)
	require.Contains(t, rows[0], "admin@example.com", "newest first")
	require.Contains(t, rows[0], "token.created")
	require.Contains(t, rows[0], "audited-reader")
	require.Contains(t, rows[0], "reader")
	var sawIntegration bool
	for _, r := range rows {
		if strings.Contains(r, "integration.created") {
			sawIntegration = true
			require.Contains(t, r, "secadmin@example.com")
			require.Contains(t, r, fmt.Sprintf("integration %d", in.ID))
		}
	}
	require.True(t, sawIntegration, "the integration's creation is listed: %q", rows)
	checkA11y(t, ctx, "audit")
	screenshot(t, ctx, "audit")

	// Filter by action prefix.
	run(t, ctx,
		chromedp.SendKeys(`#action`, "token.", chromedp.ByID),
		chromedp.Click(`form.filters button[type=submit]`, chromedp.ByQuery),
	)
	auditWaitURL(t, ctx, "action=token.")
	run(t, ctx, chromedp.WaitVisible(`#audit-events`, chromedp.ByID))
	rows = auditRowsText(t, ctx)
	require.NotEmpty(t, rows)
	for _, r := range rows {
		require.Contains(t, r, "token.")
		require.NotContains(t, r, "integration.")
	}
	var kept string
	run(t, ctx, chromedp.Value(`#action`, &kept, chromedp.ByID))
	require.Equal(t, "token.", kept, "the filter stays filled in")

	// A prefix nothing starts with.
	run(t, ctx, chromedp.Navigate(b.url+"/audit?action=nothing."), chromedp.WaitVisible(`#audit-empty`, chromedp.ByID))
	require.Contains(t, textOf(t, ctx, `#audit-empty`), "No events match these filters")

	// The integration target links to its events.
	run(t, ctx, chromedp.Navigate(b.url+"/audit"), chromedp.WaitVisible(`#audit-events`, chromedp.ByID),
		chromedp.Click(fmt.Sprintf(`#audit-events a[href="/audit?integration=%d"]`, in.ID), chromedp.ByQuery))
	auditWaitURL(t, ctx, fmt.Sprintf("integration=%d", in.ID))
	run(t, ctx, chromedp.WaitVisible(`#audit-events`, chromedp.ByID))
	rows = auditRowsText(t, ctx)
	require.NotEmpty(t, rows)
	for _, r := range rows {
		require.Contains(t, r, fmt.Sprintf("integration %d", in.ID))
	}
	var filterValue string
	run(t, ctx, chromedp.Value(`#integration`, &filterValue, chromedp.ByID))
	require.Equal(t, strconv.FormatInt(in.ID, 10), filterValue)

	// A bad filter is shown at its field.
	run(t, ctx, chromedp.Navigate(b.url+"/audit?assignment=abc"), chromedp.WaitVisible(`#assignment-error`, chromedp.ByID))
	require.Contains(t, textOf(t, ctx, `#assignment-error`), "must be a non-negative integer")

	// A scope-limited reader: no link, and the API's refusal.
	scoped := newBrowser(t)
	signIn(t, scoped, b, authtest.ScopedToken(t, b.srv.DB, "team-web@example.com", steward.RoleReader, "/aws/accounts/1"))
	var links int
	run(t, scoped, chromedp.Evaluate(`document.querySelectorAll('nav a[href="/audit"]').length`, &links))
	require.Zero(t, links)
	run(t, scoped, chromedp.Navigate(b.url+"/audit"), chromedp.WaitVisible(`main h1`, chromedp.ByQuery))
	require.Equal(t, "Not allowed", textOf(t, scoped, `main h1`))
	require.Contains(t, textOf(t, scoped, `main`), "the audit log spans every scope")
	checkA11y(t, scoped, "audit (scoped)")
}

// TestAuditPaging: the log shows 50 events a page; "Older events" follows
// the API's cursor with the filter kept, and "Newest" goes back.
func TestAuditPaging(t *testing.T) {
	b := startUI(t)
	for i := range 55 {
		_, err := b.client.CreateToken(t.Context(), steward.TokenCreate{Name: fmt.Sprintf("bulk-%02d", i), Role: steward.RoleReader})
		require.NoError(t, err)
	}
	ctx := newBrowser(t)
	signIn(t, ctx, b, b.token)
	run(t, ctx, chromedp.Navigate(b.url+"/audit?action=token.created"), chromedp.WaitVisible(`#audit-events`, chromedp.ByID))
	first := auditRowsText(t, ctx)
	require.Len(t, first, 50)
	require.Contains(t, first[0], "bulk-54")
	run(t, ctx, chromedp.Click(`a[rel="next"]`, chromedp.ByQuery))
	loc := auditWaitURL(t, ctx, "cursor=")
	require.Contains(t, loc, "action=token.created")
	run(t, ctx, chromedp.WaitVisible(`#audit-events`, chromedp.ByID))
	second := auditRowsText(t, ctx)
	require.Len(t, second, 6, "55 tokens and the owner's own")
	require.Contains(t, second[4], "bulk-00")
	require.Contains(t, second[5], "admin@example.com")
	var next int
	run(t, ctx, chromedp.Evaluate(`document.querySelectorAll('a[rel="next"]').length`, &next))
	require.Zero(t, next, "the last page has no older page")
	run(t, ctx, chromedp.Click(`nav.pager a`, chromedp.ByQuery))
	require.Eventually(t, func() bool {
		var loc string
		_ = chromedp.Run(ctx, chromedp.Location(&loc))
		return !strings.Contains(loc, "cursor=")
	}, 20*time.Second, 100*time.Millisecond, "Newest leaves the cursor")
	run(t, ctx, chromedp.WaitVisible(`#audit-events`, chromedp.ByID))
	require.Len(t, auditRowsText(t, ctx), 50)
}

func auditRowsText(t *testing.T, ctx context.Context) []string {
	t.Helper()
	var rows []string
	run(t, ctx, chromedp.Evaluate(`[...document.querySelectorAll("#audit-events tbody tr")].map(r => r.innerText)`, &rows))
	return rows
}

// auditWaitURL waits until the browser's URL contains want (a link or
// form has navigated) and returns it.
func auditWaitURL(t *testing.T, ctx context.Context, want string) string {
	t.Helper()
	var loc string
	require.Eventually(t, func() bool {
		_ = chromedp.Run(ctx, chromedp.Location(&loc))
		return strings.Contains(loc, want)
	}, 20*time.Second, 100*time.Millisecond, "the browser never reached a URL with %q; last %s", want, loc)
	return loc
}

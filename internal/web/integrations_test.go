package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/apiclient"
	"github.com/stewardhq/steward/internal/snowemu"
)

// Secrets typed into the integration form in the tests; no page may ever
// show them.
const (
	integrationWrongPassword = "Wr0ng-pa55word-typed-in-the-form"
	integrationWebhookSecret = "whsec-typed-in-the-form-never-shown"
)

// requireNoIntegrationSecrets fails when the current page's HTML holds a typed secret
// or a filled-in password input.
func requireNoIntegrationSecrets(t *testing.T, ctx context.Context, where string) {
	t.Helper()
	var html string
	var filled []string
	run(t, ctx, chromedp.OuterHTML("html", &html, chromedp.ByQuery),
		chromedp.Evaluate(`[...document.querySelectorAll("input[type=password]")].filter(i => i.value !== "" || i.getAttribute("value")).map(i => i.name)`, &filled))
	for _, s := range []string{integrationWrongPassword, integrationWebhookSecret} {
		require.NotContains(t, html, s, "%s: a typed secret is on the page", where)
	}
	require.Empty(t, filled, "%s: password inputs are never filled in", where)
}

// waitIntegrationTextGone waits until the element matching sel no longer contains gone.
func waitIntegrationTextGone(t *testing.T, ctx context.Context, sel, gone string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	var last string
	for time.Now().Before(deadline) {
		_ = chromedp.Run(ctx, chromedp.Text(sel, &last, chromedp.ByQuery, chromedp.AtLeast(0)))
		if !strings.Contains(last, gone) {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s still showed %q after %s: %q", sel, gone, within, last)
}

// seedIntegrationAssignment stores one unhealthy finding and assigns it
// through the integration, and waits for its incident.
func seedIntegrationAssignment(t *testing.T, b *uiBundle, integrationID int64) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"assessments": []map[string]any{{
		"resource":       map[string]any{"id": "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1", "cloud": "azure", "name": "vm1"},
		"recommendation": map[string]any{"key": "disk-encryption", "display_name": "Virtual machines should encrypt temp disks", "severity": "High", "remediation": "Enable encryption at host."},
		"status":         "Unhealthy",
	}}})
	_, err := b.client.PostAssessments(t.Context(), bytes.NewReader(body))
	require.NoError(t, err)
	page, err := b.client.ListAssessments(t.Context(), nil)
	require.NoError(t, err)
	require.Len(t, page.Items, 1)
	_, err = b.client.CreateAssignment(t.Context(), apiclient.AssignmentRequest{AssessmentID: page.Items[0].ID, Type: "servicenow",
		IntegrationID: integrationID, TicketType: "incident", AssignedTo: "beth.anglin@example.com", RemediationTimeframeDays: 30})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return b.emu.Count("incident") > 0 && integrationTicketCreated(t, b, page.Items[0].ID) },
		20*time.Second, 100*time.Millisecond, "the incident is created")
}

func integrationTicketCreated(t *testing.T, b *uiBundle, assessmentID int64) bool {
	t.Helper()
	tickets, err := b.client.ListTickets(t.Context(), nil)
	require.NoError(t, err)
	return len(tickets.Items) == 1 && tickets.Items[0].Status == steward.TicketCreated
}

// TestIntegrationsInBrowser: a security admin adds an integration against
// the emulator (a wrong password is shown at the password field and
// nothing is saved), sees its webhook URL with a copy button, edits it,
// syncs it now (progress, then the result) and deletes it (the preview's
// counts, a confirmation, gone from the list). No page ever shows a secret.
func TestIntegrationsInBrowser(t *testing.T) {
	b := startUI(t)
	admin := b.tokenFor(t, "secadmin@example.com", steward.RoleSecurityAdmin)
	ctx := newBrowser(t)
	signIn(t, ctx, b, admin)

	run(t, ctx, chromedp.Navigate(b.url+"/settings/integrations"), chromedp.WaitVisible(`main h1`, chromedp.ByQuery))
	require.Contains(t, textOf(t, ctx, "main"), "No integrations yet")
	run(t, ctx, chromedp.Click(`a[href="/settings/integrations/new"]`, chromedp.ByQuery), chromedp.WaitVisible(`#name`, chromedp.ByID))
	checkA11y(t, ctx, "add integration form")

	// A wrong password: the message at the password field, nothing saved,
	// what was typed kept except the secrets.
	run(t, ctx,
		chromedp.SendKeys(`#name`, "Emulator", chromedp.ByID),
		chromedp.SetValue(`#scope`, "/subscriptions/s1", chromedp.ByID),
		chromedp.SendKeys(`#instance-url`, b.emuURL, chromedp.ByID),
		chromedp.Click(`#local`, chromedp.ByID),
		chromedp.SetValue(`#auth-mode`, "basic", chromedp.ByID),
		chromedp.SendKeys(`#username`, "admin", chromedp.ByID),
		chromedp.SendKeys(`#password`, integrationWrongPassword, chromedp.ByID),
		chromedp.SendKeys(`#webhook-secret`, integrationWebhookSecret, chromedp.ByID),
		chromedp.Submit(`#name`, chromedp.ByID),
		chromedp.WaitVisible(`#password-error`, chromedp.ByID),
	)
	require.Contains(t, textOf(t, ctx, "#password-error"), "user name or password")
	var describedBy, instanceURL, mode string
	var local bool
	run(t, ctx, chromedp.AttributeValue(`#password`, "aria-describedby", &describedBy, nil, chromedp.ByID),
		chromedp.Value(`#instance-url`, &instanceURL, chromedp.ByID), chromedp.Value(`#auth-mode`, &mode, chromedp.ByID),
		chromedp.Evaluate(`document.getElementById("local").checked`, &local))
	require.Equal(t, "password-error", describedBy)
	require.Equal(t, b.emuURL, instanceURL)
	require.Equal(t, "basic", mode)
	require.True(t, local)
	requireNoIntegrationSecrets(t, ctx, "the form after a wrong password")
	checkA11y(t, ctx, "add integration form with an error")
	screenshot(t, ctx, "integration-form")
	list, err := b.client.ListIntegrations(t.Context())
	require.NoError(t, err)
	require.Empty(t, list.Items, "nothing was saved")

	// The right credentials (admin/admin): saved, and the page shows the
	// webhook URL with a copy button.
	run(t, ctx,
		chromedp.SendKeys(`#password`, "admin", chromedp.ByID),
		chromedp.SendKeys(`#webhook-secret`, integrationWebhookSecret, chromedp.ByID),
		chromedp.Submit(`#name`, chromedp.ByID),
		chromedp.WaitVisible(`#webhook-url`, chromedp.ByID),
	)
	require.Contains(t, textOf(t, ctx, "p.notice"), "Added")
	list, err = b.client.ListIntegrations(t.Context())
	require.NoError(t, err)
	require.Len(t, list.Items, 1)
	in := list.Items[0]
	detail := b.url + "/settings/integrations/" + strconv.FormatInt(in.ID, 10)
	var loc, hook string
	var copyHidden bool
	run(t, ctx, chromedp.Location(&loc), chromedp.Value(`#webhook-url`, &hook, chromedp.ByID),
		chromedp.Evaluate(`document.querySelector('button[data-copy="webhook-url"]').hidden`, &copyHidden))
	require.True(t, strings.HasPrefix(loc, detail), loc)
	require.Equal(t, fmt.Sprintf("%s/api/v1/integrations/%d/events", b.url, in.ID), hook)
	require.False(t, copyHidden, "the copy button shows with JavaScript")
	require.Contains(t, textOf(t, ctx, "main"), "Signing secret: set")
	requireNoIntegrationSecrets(t, ctx, "the integration page")
	checkA11y(t, ctx, "integration")

	// An assignment with a ticket, so syncing and deleting have work.
	seedIntegrationAssignment(t, b, in.ID)

	// Edit the name; nothing else is sent, the stored password is kept.
	run(t, ctx, chromedp.Click(`a[href$="/edit"]`, chromedp.ByQuery), chromedp.WaitVisible(`#name`, chromedp.ByID))
	requireNoIntegrationSecrets(t, ctx, "the edit form")
	require.Contains(t, textOf(t, ctx, `label[for="password"]`), "stored")
	// A custom incident mapping whose fixed fields are not field=value
	// lines: the message at that input, the mapping unfolded.
	run(t, ctx, chromedp.SetValue(`#name`, "Emulator EU", chromedp.ByID),
		chromedp.Click(`details.ticket-type summary`, chromedp.ByQuery),
		chromedp.Click(`#ticket-types-incident-custom`, chromedp.ByID),
		chromedp.SendKeys(`#ticket-types-incident-fields`, "assignment_group=Cloud Security\nnonsense", chromedp.ByID),
		chromedp.Submit(`#name`, chromedp.ByID),
		chromedp.WaitVisible(`#ticket-types-incident-fields-error`, chromedp.ByID))
	require.Contains(t, textOf(t, ctx, "#ticket-types-incident-fields-error"), `"nonsense" is not field=value`)
	requireNoIntegrationSecrets(t, ctx, "the edit form with an error")
	run(t, ctx, chromedp.SetValue(`#ticket-types-incident-fields`, "assignment_group=Cloud Security\ncategory=security", chromedp.ByID),
		chromedp.Submit(`#name`, chromedp.ByID), chromedp.WaitVisible(`#webhook-url`, chromedp.ByID))
	require.Equal(t, "Emulator EU", textOf(t, ctx, "main h1"))
	require.Contains(t, textOf(t, ctx, "main"), "Saved")
	got, err := b.client.GetIntegration(t.Context(), in.ID)
	require.NoError(t, err)
	require.Equal(t, "Emulator EU", got.Name)
	require.True(t, got.HasPassword, "a blank password keeps the stored one")
	require.Equal(t, map[string]string{"assignment_group": "Cloud Security", "category": "security"}, got.TicketTypes[steward.TicketTypeIncident].Fields)
	require.NotContains(t, got.TicketTypes, steward.TicketTypeProblem, "types left at the defaults are not sent")

	// Validate checks the stored connection again.
	run(t, ctx, chromedp.Click(`form[action$="/validate"] button`, chromedp.ByQuery))
	waitText(t, ctx, "p.notice", "The connection works", 20*time.Second)

	// Sync now: every call to the instance is slowed, so the page shows
	// the sync running, then (refreshing itself) its result.
	b.emu.SetFaults(snowemu.Faults{Latency: 1500 * time.Millisecond, PathPrefix: "/api/now/table/"})
	run(t, ctx, chromedp.Click(`form[action$="/sync"] button`, chromedp.ByQuery), chromedp.WaitVisible(`#sync-progress`, chromedp.ByID))
	require.Contains(t, textOf(t, ctx, "#sync-progress"), "Syncing")
	waitText(t, ctx, "#sync-progress", "Sync finished", 30*time.Second)
	require.Contains(t, textOf(t, ctx, "#sync-progress"), "checked 1 ticket,")
	b.emu.SetFaults(snowemu.Faults{})
	screenshot(t, ctx, "integration")

	// A reader sees no actions, and is refused when posting anyway.
	reader := b.tokenFor(t, "viewer@example.com", steward.RoleReader)
	rctx := newBrowser(t)
	signIn(t, rctx, b, reader)
	run(t, rctx, chromedp.Navigate(b.url+"/settings/integrations"), chromedp.WaitVisible(`#integrations-list`, chromedp.ByID))
	require.Contains(t, textOf(t, rctx, "#integrations-list"), "Emulator EU")
	requireNoIntegrationAction(t, rctx, `a[href="/settings/integrations/new"]`)
	run(t, rctx, chromedp.Navigate(detail), chromedp.WaitVisible(`#webhook-url`, chromedp.ByID))
	for _, sel := range []string{`a[href$="/edit"]`, `a[href$="/delete"]`, `form[action$="/sync"]`, `form[action$="/validate"]`} {
		requireNoIntegrationAction(t, rctx, sel)
	}
	requireNoIntegrationSecrets(t, rctx, "the integration page as a reader")
	for _, action := range []string{"/sync", "/delete", "", "/validate"} {
		run(t, rctx, chromedp.Navigate(detail), chromedp.WaitVisible(`#webhook-url`, chromedp.ByID),
			chromedp.Evaluate(fmt.Sprintf(`(() => { const f = document.createElement("form"); f.method = "post"; f.action = %q;
				const i = document.createElement("input"); i.name = "name"; i.value = "hijacked"; f.appendChild(i);
				document.body.appendChild(f); f.submit(); return true })()`, detail+action), nil),
			chromedp.WaitVisible(`p.error[role="alert"]`, chromedp.ByQuery))
		require.Equal(t, "Not allowed", textOf(t, rctx, "main h1"), action)
		require.Contains(t, textOf(t, rctx, "main"), "needs the security-admin role", action)
	}
	got, err = b.client.GetIntegration(t.Context(), in.ID)
	require.NoError(t, err)
	require.Equal(t, "Emulator EU", got.Name, "the reader changed nothing")
	require.Equal(t, steward.IntegrationActive, got.State)

	// The list, with the integration's sync health.
	run(t, ctx, chromedp.Navigate(b.url+"/settings/integrations"), chromedp.WaitVisible(`#integrations-list table`, chromedp.ByQuery))
	row := textOf(t, ctx, "#integrations-list tbody tr")
	require.Contains(t, row, "Emulator EU")
	require.Contains(t, row, b.emuURL)
	require.Contains(t, row, "basic")
	require.Contains(t, row, "UTC", "the last poll and reconcile times")
	requireNoIntegrationSecrets(t, ctx, "the list")
	checkA11y(t, ctx, "integrations")
	screenshot(t, ctx, "integrations")

	// Delete: the preview's counts, a confirmation, then gone from the list.
	run(t, ctx, chromedp.Navigate(detail), chromedp.WaitVisible(`a[href$="/delete"]`, chromedp.ByQuery),
		chromedp.Click(`a[href$="/delete"]`, chromedp.ByQuery), chromedp.WaitVisible(`#delete-preview`, chromedp.ByID))
	require.Equal(t, "1", textOf(t, ctx, "#preview-assignments"))
	require.Equal(t, "1", textOf(t, ctx, "#preview-tickets"))
	require.Equal(t, "1", textOf(t, ctx, "#preview-open"))
	var question string
	run(t, ctx, chromedp.AttributeValue(`form[data-confirm]`, "data-confirm", &question, nil, chromedp.ByQuery))
	require.Contains(t, question, "Emulator EU")
	requireNoIntegrationSecrets(t, ctx, "the delete page")
	// The confirmation question is answered yes.
	run(t, ctx, chromedp.Evaluate(`window.confirm = () => true; true`, nil), chromedp.Click(`form[data-confirm] button`, chromedp.ByQuery),
		chromedp.WaitVisible(`p.notice`, chromedp.ByQuery), chromedp.Location(&loc))
	require.True(t, strings.HasPrefix(loc, b.url+"/settings/integrations?deleted="), loc)
	require.Contains(t, textOf(t, ctx, "p.notice"), "being deleted")
	waitIntegrationTextGone(t, ctx, "#integrations-list", "Emulator EU", 30*time.Second)
	list, err = b.client.ListIntegrations(t.Context())
	require.NoError(t, err)
	require.Empty(t, list.Items)
}

// requireNoIntegrationAction fails when the page has an element matching sel.
func requireNoIntegrationAction(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	var n int
	run(t, ctx, chromedp.Evaluate(fmt.Sprintf(`document.querySelectorAll(%q).length`, sel), &n))
	require.Zero(t, n, "%s is shown", sel)
}

// integrationPageClient is a browser-like HTTP client signed in with token.
func integrationPageClient(t *testing.T, b *uiBundle, token string) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.PostForm(b.url+"/signin", url.Values{"token": {token}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, "sign in")
	return c
}

func integrationPage(t *testing.T, c *http.Client, method, u, fetchMode string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, u, nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "text/html")
	if fetchMode != "" {
		req.Header.Set("Sec-Fetch-Mode", fetchMode)
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(raw)
}

// TestIntegrationsPageStates: a failed "Validate" is shown on the
// integration's page; a page that refreshes itself while its integration
// is deleted gets a last copy saying so (ending the refreshing), while a
// navigation to it gets 404.
func TestIntegrationsPageStates(t *testing.T) {
	b := startUI(t)
	in, err := b.client.CreateIntegration(t.Context(), apiclient.IntegrationRequest{Name: integrationPtr("Emulator"), Scope: integrationPtr("/"),
		InstanceURL: integrationPtr(b.emuURL), Local: integrationPtr(true), AuthMode: integrationPtr("basic"), Username: integrationPtr("admin"), Password: integrationPtr("admin")})
	require.NoError(t, err)
	c := integrationPageClient(t, b, b.tokenFor(t, "secadmin@example.com", steward.RoleSecurityAdmin))
	detail := fmt.Sprintf("%s/settings/integrations/%d", b.url, in.ID)

	b.emu.SetFaults(snowemu.Faults{Error503: 1, PathPrefix: "/api/now/table/"})
	status, body := integrationPage(t, c, http.MethodPost, detail+"/validate", "")
	require.Equal(t, http.StatusUnprocessableEntity, status)
	require.Contains(t, body, `id="validate-error"`)
	require.Contains(t, body, "The connection check failed")
	require.Contains(t, body, "unavailable")
	b.emu.SetFaults(snowemu.Faults{})
	status, _ = integrationPage(t, c, http.MethodPost, detail+"/validate", "")
	require.Equal(t, http.StatusSeeOther, status)

	_, err = b.client.DeleteIntegration(t.Context(), in.ID)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err := b.client.GetIntegration(t.Context(), in.ID)
		return err != nil
	}, 20*time.Second, 100*time.Millisecond, "the integration is deleted")
	for _, page := range []string{detail, detail + "/delete"} {
		status, body = integrationPage(t, c, http.MethodGet, page, "cors")
		require.Equal(t, http.StatusOK, status, page)
		require.Contains(t, body, "This integration has been deleted", page)
		require.NotContains(t, body, "data-live", page)
		status, _ = integrationPage(t, c, http.MethodGet, page, "navigate")
		require.Equal(t, http.StatusNotFound, status, page)
	}
}

func integrationPtr[T any](v T) *T { return &v }

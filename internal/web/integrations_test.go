package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
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
	wrongPassword = "Wr0ng-pa55word-typed-in-the-form"
	webhookSecret = "whsec-typed-in-the-form-never-shown"
)

// requireNoSecrets fails when the current page's HTML holds a typed secret
// or a filled-in password input.
func requireNoSecrets(t *testing.T, ctx context.Context, where string) {
	t.Helper()
	var html string
	var filled []string
	run(t, ctx, chromedp.OuterHTML("html", &html, chromedp.ByQuery),
		chromedp.Evaluate(`[...document.querySelectorAll("input[type=password]")].filter(i => i.value !== "" || i.getAttribute("value")).map(i => i.name)`, &filled))
	for _, s := range []string{wrongPassword, webhookSecret} {
		require.NotContains(t, html, s, "%s: a typed secret is on the page", where)
	}
	require.Empty(t, filled, "%s: password inputs are never filled in", where)
}

// waitNoText waits until the element matching sel no longer contains gone.
func waitNoText(t *testing.T, ctx context.Context, sel, gone string, within time.Duration) {
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

// seedServiceNowAssignment stores one unhealthy finding and assigns it
// through the integration, and waits for its incident.
func seedServiceNowAssignment(t *testing.T, b *uiBundle, integrationID int64) {
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
	require.Eventually(t, func() bool { return b.emu.Count("incident") > 0 && ticketCreated(t, b, page.Items[0].ID) },
		20*time.Second, 100*time.Millisecond, "the incident is created")
}

func ticketCreated(t *testing.T, b *uiBundle, assessmentID int64) bool {
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
		chromedp.SendKeys(`#password`, wrongPassword, chromedp.ByID),
		chromedp.SendKeys(`#webhook-secret`, webhookSecret, chromedp.ByID),
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
	requireNoSecrets(t, ctx, "the form after a wrong password")
	checkA11y(t, ctx, "add integration form with an error")
	screenshot(t, ctx, "integration-form")
	list, err := b.client.ListIntegrations(t.Context())
	require.NoError(t, err)
	require.Empty(t, list.Items, "nothing was saved")

	// The right credentials (admin/admin): saved, and the page shows the
	// webhook URL with a copy button.
	run(t, ctx,
		chromedp.SendKeys(`#password`, "admin", chromedp.ByID),
		chromedp.SendKeys(`#webhook-secret`, webhookSecret, chromedp.ByID),
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
	requireNoSecrets(t, ctx, "the integration page")
	checkA11y(t, ctx, "integration")

	// An assignment with a ticket, so syncing and deleting have work.
	seedServiceNowAssignment(t, b, in.ID)

	// Edit the name; nothing else is sent, the stored password is kept.
	run(t, ctx, chromedp.Click(`a[href$="/edit"]`, chromedp.ByQuery), chromedp.WaitVisible(`#name`, chromedp.ByID))
	requireNoSecrets(t, ctx, "the edit form")
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
	requireNoSecrets(t, ctx, "the edit form with an error")
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
	requireNoLink(t, rctx, `a[href="/settings/integrations/new"]`)
	run(t, rctx, chromedp.Navigate(detail), chromedp.WaitVisible(`#webhook-url`, chromedp.ByID))
	for _, sel := range []string{`a[href$="/edit"]`, `a[href$="/delete"]`, `form[action$="/sync"]`, `form[action$="/validate"]`} {
		requireNoLink(t, rctx, sel)
	}
	requireNoSecrets(t, rctx, "the integration page as a reader")
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
	requireNoSecrets(t, ctx, "the list")
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
	requireNoSecrets(t, ctx, "the delete page")
	// The confirmation question is answered yes.
	run(t, ctx, chromedp.Evaluate(`window.confirm = () => true; true`, nil), chromedp.Click(`form[data-confirm] button`, chromedp.ByQuery),
		chromedp.WaitVisible(`p.notice`, chromedp.ByQuery), chromedp.Location(&loc))
	require.True(t, strings.HasPrefix(loc, b.url+"/settings/integrations?deleted="), loc)
	require.Contains(t, textOf(t, ctx, "p.notice"), "being deleted")
	waitNoText(t, ctx, "#integrations-list", "Emulator EU", 30*time.Second)
	list, err = b.client.ListIntegrations(t.Context())
	require.NoError(t, err)
	require.Empty(t, list.Items)
}

// requireNoLink fails when the page has an element matching sel.
func requireNoLink(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	var n int
	run(t, ctx, chromedp.Evaluate(fmt.Sprintf(`document.querySelectorAll(%q).length`, sel), &n))
	require.Zero(t, n, "%s is shown", sel)
}

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

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/apiclient"
)

// ruleFinding is one assessment of a Steward JSON batch on an Azure VM of
// subscription sub-01.
func ruleFinding(rec, sev, vm, status string) map[string]any {
	return map[string]any{
		"resource": map[string]any{"id": "/subscriptions/sub-01/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/" + vm,
			"cloud": "azure", "type": "Microsoft.Compute/virtualMachines"},
		"recommendation": map[string]any{"key": rec, "display_name": "Check " + rec, "severity": sev},
		"status":         status,
	}
}

func postRuleFindings(t *testing.T, b *uiBundle, rows ...map[string]any) {
	t.Helper()
	body, err := json.Marshal(map[string]any{"assessments": rows})
	require.NoError(t, err)
	_, err = b.client.PostAssessments(t.Context(), bytes.NewReader(body))
	require.NoError(t, err)
}

// acceptDialogs answers yes to every confirm() the page asks
// (form[data-confirm]).
func acceptDialogs(ctx context.Context) {
	chromedp.ListenTarget(ctx, func(ev any) {
		if _, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			go func() { _ = chromedp.Run(ctx, page.HandleJavaScriptDialog(true)) }()
		}
	})
}

// TestRulesInBrowser: a security admin creates a manual rule for High
// findings with a fixed owner through the form: the preview counts the
// unhealthy findings it would assign, a priority clash is shown at the
// priority field, the rule is saved, run now shows its progress until done
// and the assignments exist with the rule; then it is disabled and
// deleted.
func TestRulesInBrowser(t *testing.T) {
	b := startUI(t)
	postRuleFindings(t, b,
		ruleFinding("disk-encryption", "High", "vm1", "Unhealthy"),
		ruleFinding("disk-encryption", "High", "vm2", "Unhealthy"),
		ruleFinding("mfa", "High", "vm3", "Unhealthy"),
		ruleFinding("mfa", "High", "vm4", "Healthy"),
		ruleFinding("tls", "Medium", "vm1", "Unhealthy"),
	)
	admin := b.tokenFor(t, "secadmin@example.com", steward.RoleSecurityAdmin)
	ctx := newBrowser(t)
	acceptDialogs(ctx)
	signIn(t, ctx, b, admin)

	// No rules yet: the empty state explains them and links the docs.
	run(t, ctx, chromedp.Navigate(b.url+"/settings/rules"), chromedp.WaitVisible(`#rules-empty`, chromedp.ByID))
	require.Contains(t, textOf(t, ctx, "#rules-empty"), "assigns unhealthy findings")
	var docs string
	run(t, ctx, chromedp.AttributeValue(`#rules-empty a`, "href", &docs, nil, chromedp.ByQuery))
	require.Contains(t, docs, "docs/rules.md")

	// An enabled rule for Low findings everywhere at priority 10.
	_, err := b.client.CreateRule(t.Context(), apiclient.RuleInput{Name: "low-everywhere", Priority: 10, Scope: "/",
		When:  []steward.ConditionSet{{Severity: []steward.Severity{steward.SeverityLow}}},
		Owner: steward.OwnerSource{Email: "low@example.com"}, DueInDays: 90})
	require.NoError(t, err)
	run(t, ctx, chromedp.Navigate(b.url+"/settings/rules"), chromedp.WaitVisible(`table`, chromedp.ByQuery))
	require.Contains(t, textOf(t, ctx, "table"), "low-everywhere")
	require.Contains(t, textOf(t, ctx, "table"), "severity Low")
	checkA11y(t, ctx, "rules list")

	// The form: preview first.
	run(t, ctx, chromedp.Click(`a[href="/settings/rules/new"]`, chromedp.ByQuery), chromedp.WaitVisible(`#name`, chromedp.ByID),
		chromedp.SendKeys(`#name`, "high-to-platform", chromedp.ByID),
		chromedp.SetValue(`#priority`, "20", chromedp.ByID),
		chromedp.SetValue(`#scope`, "/subscriptions/sub-01", chromedp.ByID),
		chromedp.Click(`#when-0-severity-High`, chromedp.ByID),
		chromedp.SendKeys(`#owner-email`, "platform@example.com", chromedp.ByID),
		chromedp.SetValue(`#due-in-days`, "14", chromedp.ByID),
		chromedp.Click(`#preview-button`, chromedp.ByID),
		chromedp.WaitVisible(`#preview`, chromedp.ByID))
	require.Equal(t, "3", textOf(t, ctx, "#preview-assign"), "three High findings are unhealthy and unassigned")
	sample := textOf(t, ctx, "#preview table")
	require.Contains(t, sample, "vm3")
	require.NotContains(t, sample, "vm4", "a healthy finding is not assigned")
	checkA11y(t, ctx, "rule form")
	screenshot(t, ctx, "rule-form")

	// The entered values survive the preview; a clash is shown at priority.
	var name string
	run(t, ctx, chromedp.Value(`#name`, &name, chromedp.ByID))
	require.Equal(t, "high-to-platform", name)
	run(t, ctx, chromedp.SetValue(`#priority`, "10", chromedp.ByID), chromedp.Click(`#save-button`, chromedp.ByID),
		chromedp.WaitVisible(`#priority-error`, chromedp.ByID))
	require.Contains(t, textOf(t, ctx, "#priority-error"), "same priority")
	var invalid, described string
	run(t, ctx, chromedp.AttributeValue(`#priority`, "aria-invalid", &invalid, nil, chromedp.ByID),
		chromedp.AttributeValue(`#priority`, "aria-describedby", &described, nil, chromedp.ByID))
	require.Equal(t, "true", invalid)
	require.Contains(t, described, "priority-error")
	checkA11y(t, ctx, "rule form with an error")

	// Save at another priority.
	run(t, ctx, chromedp.SetValue(`#priority`, "20", chromedp.ByID), chromedp.Click(`#save-button`, chromedp.ByID),
		chromedp.WaitVisible(`.notice`, chromedp.ByQuery))
	require.Contains(t, textOf(t, ctx, "main h1"), "high-to-platform")
	rule, err := b.client.GetRule(t.Context(), "high-to-platform")
	require.NoError(t, err)
	require.Equal(t, 20, rule.Priority)
	require.Equal(t, "platform@example.com", rule.Owner.Email)
	require.Equal(t, 14, rule.DueInDays)
	require.Nil(t, rule.Ticket, "a manual rule")
	require.Equal(t, []steward.Severity{steward.SeverityHigh}, rule.When[0].Severity)
	require.Len(t, rule.When, 1, "the blank condition set is left out")
	checkA11y(t, ctx, "rule page")

	// Run now: progress until done, then the assignments exist.
	run(t, ctx, chromedp.Click(`form[action$="/run"] button`, chromedp.ByQuery), chromedp.WaitVisible(`#run-progress`, chromedp.ByID))
	waitText(t, ctx, "#run-progress", "Done: 3 assigned", 20*time.Second)
	waitText(t, ctx, "#runs table", "succeeded", 20*time.Second)
	assigned, err := b.client.ListAssignments(t.Context(), nil)
	require.NoError(t, err)
	require.Len(t, assigned.Items, 3)
	for _, a := range assigned.Items {
		require.Equal(t, rule.ID, a.RuleID, "assignment %d was made by the rule", a.ID)
		require.Equal(t, "platform@example.com", a.Owner)
	}
	run(t, ctx, chromedp.Navigate(fmt.Sprintf("%s/settings/rules/%d", b.url, rule.ID)), chromedp.WaitVisible(`table`, chromedp.ByQuery))
	require.Contains(t, textOf(t, ctx, "table"), "secadmin@example.com", "the run is in the rule's latest runs")

	run(t, ctx, chromedp.Navigate(b.url+"/settings/rules"), chromedp.WaitVisible(`table`, chromedp.ByQuery))
	screenshot(t, ctx, "rules")

	// Edit: disable it.
	run(t, ctx, chromedp.Navigate(fmt.Sprintf("%s/settings/rules/%d/edit", b.url, rule.ID)), chromedp.WaitVisible(`#enabled`, chromedp.ByID),
		chromedp.Click(`#enabled`, chromedp.ByID), chromedp.Click(`#save-button`, chromedp.ByID), chromedp.WaitVisible(`.notice`, chromedp.ByQuery))
	require.Contains(t, textOf(t, ctx, "dl.props"), "No: it assigns nothing on arrival")
	rule, err = b.client.GetRule(t.Context(), strconv.FormatInt(rule.ID, 10))
	require.NoError(t, err)
	require.False(t, rule.Enabled)
	require.Equal(t, "platform@example.com", rule.Owner.Email, "the rest is kept")

	// Delete (after the confirm).
	run(t, ctx, chromedp.Click(`form[action$="/delete"] button`, chromedp.ByQuery), chromedp.WaitVisible(`#rule-deleted`, chromedp.ByID))
	require.Contains(t, textOf(t, ctx, "#rule-deleted"), "high-to-platform")
	_, err = b.client.GetRule(t.Context(), strconv.FormatInt(rule.ID, 10))
	require.Error(t, err)
	assigned, err = b.client.ListAssignments(t.Context(), nil)
	require.NoError(t, err)
	require.Len(t, assigned.Items, 3, "what the rule assigned stays")
}

// TestRulesReaderCannotChange: a reader sees the rules but no New, Edit,
// Run or Delete, cannot open the form, and a same-origin post anyway is
// refused with 403 and changes nothing.
func TestRulesReaderCannotChange(t *testing.T) {
	b := startUI(t)
	rule, err := b.client.CreateRule(t.Context(), apiclient.RuleInput{Name: "criticals", Priority: 5, Scope: "/",
		When:  []steward.ConditionSet{{Severity: []steward.Severity{steward.SeverityCritical}}},
		Owner: steward.OwnerSource{Tag: "owner", Fallback: "secops@example.com"}, DueInDays: 7})
	require.NoError(t, err)
	ctx := newBrowser(t)
	signIn(t, ctx, b, b.tokenFor(t, "viewer@example.com", steward.RoleReader))

	run(t, ctx, chromedp.Navigate(b.url+"/settings/rules"), chromedp.WaitVisible(`table`, chromedp.ByQuery))
	require.Contains(t, textOf(t, ctx, "table"), `tag "owner", else secops@example.com`)
	var n int
	run(t, ctx, chromedp.Evaluate(`document.querySelectorAll('a[href="/settings/rules/new"]').length`, &n))
	require.Zero(t, n, "no New rule for a reader")

	detail := fmt.Sprintf("%s/settings/rules/%d", b.url, rule.ID)
	run(t, ctx, chromedp.Navigate(detail), chromedp.WaitVisible(`dl.props`, chromedp.ByQuery))
	run(t, ctx, chromedp.Evaluate(`document.querySelectorAll('a[href$="/edit"], form[action$="/run"], form[action$="/delete"]').length`, &n))
	require.Zero(t, n, "no Edit, Run now or Delete for a reader")

	run(t, ctx, chromedp.Navigate(b.url+"/settings/rules/new"), chromedp.WaitVisible(`main h1`, chromedp.ByQuery))
	require.Contains(t, textOf(t, ctx, "main"), "needs the security-admin role")

	for _, action := range []string{"/delete", "/run", ""} {
		run(t, ctx, chromedp.Navigate(detail), chromedp.WaitVisible(`dl.props`, chromedp.ByQuery),
			chromedp.Evaluate(fmt.Sprintf(`(() => { const f = document.createElement("form"); f.method = "post";
				f.action = %q; const i = document.createElement("input"); i.name = "name"; i.value = "renamed";
				f.appendChild(i); document.body.appendChild(f); f.submit(); return true })()`, fmt.Sprintf("/settings/rules/%d%s", rule.ID, action)), nil),
			chromedp.WaitVisible(`p.error`, chromedp.ByQuery))
		require.Contains(t, textOf(t, ctx, "main h1"), "Not allowed", action)
	}
	got, err := b.client.GetRule(t.Context(), strconv.FormatInt(rule.ID, 10))
	require.NoError(t, err)
	require.Equal(t, "criticals", got.Name)
	runs, err := b.client.ListRuleRuns(t.Context(), "criticals")
	require.NoError(t, err)
	require.Empty(t, runs.Items)
	require.False(t, strings.Contains(b.logs.String(), "page panicked"))
}

// TestRulesFormErrorsAtTheirFields: the form's refusals (the API's, and
// numbers that are not numbers) are shown at their field, with the status
// 422 and the values as entered, and nothing is created.
func TestRulesFormErrorsAtTheirFields(t *testing.T) {
	b := startUI(t)
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	hc := &http.Client{Jar: jar}
	post := func(path string, form url.Values) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), "POST", b.url+path, strings.NewReader(form.Encode()))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "text/html")
		resp, err := hc.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(body)
	}
	status, _ := post("/signin", url.Values{"token": {b.tokenFor(t, "secadmin@example.com", steward.RoleSecurityAdmin)}})
	require.Equal(t, http.StatusOK, status)

	good := func() url.Values {
		return url.Values{"name": {"web-rule"}, "priority": {"30"}, "enabled": {"1"}, "scope": {"/subscriptions/sub-01"},
			"sets": {"2"}, "when-0-severity": {"High"}, "owner_kind": {"email"}, "owner_email": {"team@example.com"},
			"type": {"manual"}, "due_in_days": {"14"}}
	}
	for _, tc := range []struct {
		name    string
		edit    func(url.Values)
		errorID string
		message string
	}{
		{"priority not a number", func(v url.Values) { v.Set("priority", "ten") }, "priority-error", "is not a whole number"},
		{"priority out of range", func(v url.Values) { v.Set("priority", "1001") }, "priority-error", "outside 0–1000"},
		{"missing scope", func(v url.Values) { v.Set("scope", "") }, "scope-error", "scope is missing"},
		{"exclusion outside scope", func(v url.Values) { v.Set("exclude", "/subscriptions/sub-02") }, "exclude-error", "is not inside scope"},
		{"no conditions", func(v url.Values) { v.Del("when-0-severity") }, "when-error", "when is empty"},
		{"bad tag line", func(v url.Values) { v.Set("when-0-tags", "env") }, "when-0-error", "key=value"},
		{"bad owner", func(v url.Values) { v.Set("owner_email", "not-an-address") }, "owner-email-error", "not a plain e-mail address"},
		{"tag owner without tag", func(v url.Values) { v.Set("owner_kind", "tag") }, "owner-error", "owner needs an email or a tag"},
		{"bad fallback", func(v url.Values) {
			v.Set("owner_kind", "tag")
			v.Set("owner_tag", "owner")
			v.Set("owner_fallback", "nobody")
		},
			"owner-fallback-error", "not a plain e-mail address"},
		{"unknown integration", func(v url.Values) { v.Set("type", "servicenow"); v.Set("integration", "nowhere") }, "integration-error", "no integration has that name"},
		{"timeframe", func(v url.Values) { v.Set("due_in_days", "0") }, "due-in-days-error", "outside 1–3650"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			form := good()
			tc.edit(form)
			for _, path := range []string{"/settings/rules", "/settings/rules/preview"} {
				status, body := post(path, form)
				require.Equal(t, http.StatusUnprocessableEntity, status, "%s: %s", path, body)
				require.Contains(t, body, `id="`+tc.errorID+`" class="field-error" role="alert">`, path)
				i := strings.Index(body, `id="`+tc.errorID+`"`)
				require.Contains(t, body[i:i+400], tc.message, path)
				require.Contains(t, body, `value="web-rule"`, "the entered values are shown again")
			}
		})
	}
	p, err := b.client.ListRules(t.Context())
	require.NoError(t, err)
	require.Empty(t, p.Items, "nothing was created")

	// The good form saves, with two condition sets and tags.
	form := good()
	form.Set("when-1-recommendation", "key-a\nkey-b")
	form.Set("when-1-tags", "env=prod, production\nteam=web")
	form.Set("sets", "3")
	status, body := post("/settings/rules", form)
	require.Equal(t, http.StatusOK, status, body)
	require.Contains(t, body, "Saved.")
	rule, err := b.client.GetRule(t.Context(), "web-rule")
	require.NoError(t, err)
	require.Len(t, rule.When, 2)
	require.Equal(t, []string{"key-a", "key-b"}, rule.When[1].Recommendation)
	require.Equal(t, map[string][]string{"env": {"prod", "production"}, "team": {"web"}}, rule.When[1].Tags)
}

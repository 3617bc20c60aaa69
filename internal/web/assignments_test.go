package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/apiclient"
	"github.com/stewardhq/steward/internal/snowemu"
)

// asgFindings is a Steward JSON batch of unhealthy findings, one per
// "recommendation resource" pair.
func asgFindings(pairs ...[2]string) []byte {
	var rows []map[string]any
	for _, p := range pairs {
		rows = append(rows, map[string]any{
			"resource":       map[string]any{"id": p[1], "cloud": "azure", "type": "Microsoft.Compute/virtualMachines"},
			"recommendation": map[string]any{"key": p[0], "display_name": "Check " + p[0], "severity": "High"},
			"status":         "Unhealthy",
		})
	}
	b, _ := json.Marshal(map[string]any{"assessments": rows})
	return b
}

// asgAssessmentIDs loads findings and returns their assessment IDs by
// "recommendation resource".
func asgAssessmentIDs(t *testing.T, b *uiBundle, pairs ...[2]string) map[string]int64 {
	t.Helper()
	_, err := b.client.PostAssessments(t.Context(), bytes.NewReader(asgFindings(pairs...)))
	require.NoError(t, err)
	page, err := b.client.ListAssessments(t.Context(), url.Values{"limit": {"500"}})
	require.NoError(t, err)
	out := map[string]int64{}
	for _, a := range page.Items {
		out[a.RecommendationKey+" "+a.ResourceID] = a.ID
	}
	return out
}

// asgWaitJS waits until the JavaScript expression is true on the current
// page, across navigations.
func asgWaitJS(t *testing.T, ctx context.Context, expr string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		var ok bool
		if err := chromedp.Run(ctx, chromedp.Evaluate(expr, &ok)); err == nil && ok {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	var loc string
	_ = chromedp.Run(ctx, chromedp.Location(&loc))
	t.Fatalf("at %s, %s never became true within %s", loc, expr, within)
}

// asgHistory returns the history table's rows as "actor | action |
// changes | reason", newest first.
func asgHistory(t *testing.T, ctx context.Context) []string {
	t.Helper()
	var rows []string
	run(t, ctx, chromedp.Evaluate(`[...document.querySelectorAll("#history tbody tr")].map(tr =>
		[...tr.cells].slice(1).map(td => td.innerText.trim().replace(/\s+/g, " ")).join(" | "))`, &rows))
	return rows
}

// TestAssignmentsInBrowser: a contributor filters the list by owner, opens
// an assignment, reassigns it, is told at the field that an ETA needs a
// justification, sets one, changes the due date and ends the assignment
// with a reason; the history names the contributor for each change. A
// reader sees no forms and is refused when posting one anyway.
func TestAssignmentsInBrowser(t *testing.T) {
	b := startUI(t)
	ctx := t.Context()
	vm1, vm2, vm3 := "/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm1",
		"/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm2",
		"/subscriptions/s2/resourceGroups/rg9/providers/Microsoft.Compute/virtualMachines/vm3"
	ids := asgAssessmentIDs(t, b, [2]string{"disk-encryption", vm1}, [2]string{"disk-encryption", vm2}, [2]string{"open-ssh", vm3})
	mine, err := b.client.CreateAssignment(ctx, apiclient.AssignmentRequest{AssessmentID: ids["disk-encryption "+vm1],
		Owner: "alice@example.com", RemediationTimeframeDays: 14, Reason: "owns rg1"})
	require.NoError(t, err)
	late, err := b.client.CreateAssignment(ctx, apiclient.AssignmentRequest{AssessmentID: ids["disk-encryption "+vm2],
		Owner: "bob@example.com", DueDate: "2020-01-31"})
	require.NoError(t, err)
	_, err = b.client.CreateAssignment(ctx, apiclient.AssignmentRequest{AssessmentID: ids["open-ssh "+vm3],
		Owner: "alice@example.com", RemediationTimeframeDays: 30})
	require.NoError(t, err)

	// A governance rule assigns Low findings as they arrive.
	rule, err := b.client.CreateRule(ctx, apiclient.RuleInput{Name: "low-to-ops", Priority: 10, Scope: "/",
		When:  []steward.ConditionSet{{Severity: []steward.Severity{steward.SeverityLow}}},
		Owner: steward.OwnerSource{Email: "ops@example.com"}, DueInDays: 90})
	require.NoError(t, err)
	low, _ := json.Marshal(map[string]any{"assessments": []map[string]any{{
		"resource":       map[string]any{"id": vm3, "cloud": "azure", "type": "Microsoft.Compute/virtualMachines"},
		"recommendation": map[string]any{"key": "boot-diagnostics", "display_name": "Boot diagnostics", "severity": "Low"},
		"status":         "Unhealthy",
	}}})
	res, err := b.client.PostAssessments(ctx, bytes.NewReader(low))
	require.NoError(t, err)
	require.Equal(t, 1, res.RuleAssignments)

	const contributorName = "casey-contributor"
	br := newBrowser(t)
	signIn(t, br, b, b.tokenFor(t, contributorName, steward.RoleContributor))

	// The list: every active assignment, the overdue one marked.
	run(t, br, chromedp.Navigate(b.url+"/assignments"), chromedp.WaitVisible(`#assignments`, chromedp.ByID))
	list := textOf(t, br, "#assignments")
	require.Contains(t, list, "bob@example.com")
	require.Contains(t, list, "alice@example.com")
	require.Contains(t, textOf(t, br, fmt.Sprintf(`#assignments tr:has(a[href="/assignments/%d"]) .overdue`, late.ID)), "2020-01-31 · overdue")
	ruleLink := fmt.Sprintf(`#assignments a[href="/settings/rules/%d"]`, rule.ID)
	require.Equal(t, "low-to-ops", textOf(t, br, ruleLink), "the rule that made it")
	require.Contains(t, textOf(t, br, fmt.Sprintf(`#assignments tr:has(a[href="/assignments/%d"])`, mine.ID)), "admin@example.com", "made by a person")
	checkA11y(t, br, "assignments")
	screenshot(t, br, "assignments")

	// Pages: 4 active assignments, 3 a page; the next page keeps the filter.
	run(t, br, chromedp.Navigate(b.url+"/assignments?limit=3&owner=alice%40example.com"), chromedp.WaitVisible(`#assignments`, chromedp.ByID))
	require.Equal(t, 2, asgRowCount(t, br), "the owner filter holds")
	run(t, br, chromedp.Navigate(b.url+"/assignments?limit=3"), chromedp.WaitVisible(`#assignments`, chromedp.ByID))
	require.Equal(t, 3, asgRowCount(t, br))
	first := textOf(t, br, "#assignments tbody")
	run(t, br, chromedp.Click(`a[rel=next]`, chromedp.ByQuery))
	waitText(t, br, ".pager", "First page", 20*time.Second)
	require.Equal(t, 1, asgRowCount(t, br))
	require.NotContains(t, first, "ops@example.com", "due in 90 days, the rule's assignment comes last")
	require.Contains(t, textOf(t, br, "#assignments tbody"), "ops@example.com")
	var next int
	run(t, br, chromedp.Evaluate(`document.querySelectorAll("a[rel=next]").length`, &next))
	require.Zero(t, next, "the last page has no next")

	// A filter the API refuses is said above the form, the values kept.
	run(t, br, chromedp.Navigate(b.url+"/assignments?ticket_state=Open&owner=x%40example.com"), chromedp.WaitVisible(`#filter-error`, chromedp.ByID))
	require.Contains(t, textOf(t, br, "#filter-error"), `ticket state "Open"`)
	require.Equal(t, "x@example.com", asgValue(t, br, "#f-owner"))

	// The overview's link for overdue assignments lists only those.
	run(t, br, chromedp.Navigate(b.url+"/assignments?overdue=true"), chromedp.WaitVisible(`#assignments`, chromedp.ByID))
	require.NotContains(t, textOf(t, br, "#assignments"), "alice@example.com")
	require.True(t, asgChecked(t, br, "#f-overdue"))

	// Filter by owner through the form.
	run(t, br, chromedp.Navigate(b.url+"/assignments"), chromedp.WaitVisible(`#f-owner`, chromedp.ByID),
		chromedp.SendKeys(`#f-owner`, "ALICE@example.com", chromedp.ByID),
		chromedp.Click(`form.filters button[type=submit]`, chromedp.ByQuery))
	asgWaitJS(t, br, `location.search.includes("owner=ALICE%40example.com") && !!document.querySelector("#assignments")`, 20*time.Second)
	list = textOf(t, br, "#assignments")
	require.NotContains(t, list, "bob@example.com")
	require.Equal(t, 2, strings.Count(list, "alice@example.com"), list)
	require.NotContains(t, list, "ops@example.com")
	require.Equal(t, "ALICE@example.com", asgValue(t, br, "#f-owner"), "the filter keeps what was typed")

	// Open the assignment.
	run(t, br, chromedp.Click(fmt.Sprintf(`a[href="/assignments/%d"]`, mine.ID), chromedp.ByQuery))
	waitText(t, br, "h1", fmt.Sprintf("Assignment %d: disk-encryption", mine.ID), 20*time.Second)
	require.Contains(t, textOf(t, br, "#owner-now"), "alice@example.com")

	// Reassign.
	run(t, br, chromedp.SendKeys(`#owner`, "dana@example.com", chromedp.ByID),
		chromedp.SendKeys(`#owner-reason`, "team change", chromedp.ByID),
		chromedp.Click(`#owner-form button[type=submit]`, chromedp.ByQuery))
	waitText(t, br, ".notice", "reassigned", 20*time.Second)
	require.Contains(t, textOf(t, br, "#owner-now"), "dana@example.com")

	// An ETA without a justification: the message at the field, the date kept.
	run(t, br, chromedp.SetValue(`#eta`, "2031-03-15", chromedp.ByID),
		chromedp.Click(`#eta-form button[type=submit]`, chromedp.ByQuery))
	waitText(t, br, "#eta_justification-error", "eta_justification is required", 20*time.Second)
	require.Equal(t, "2031-03-15", asgValue(t, br, "#eta"))
	require.Equal(t, "true", asgAttr(t, br, "#eta_justification", "aria-invalid"))
	require.Contains(t, asgAttr(t, br, "#eta_justification", "aria-describedby"), "eta_justification-error")
	require.Contains(t, textOf(t, br, "#eta-now"), "none", "nothing was saved")
	checkA11y(t, br, "assignment with a form error")

	// With one.
	run(t, br, chromedp.SendKeys(`#eta_justification`, "vendor patch ships in March", chromedp.ByID),
		chromedp.Click(`#eta-form button[type=submit]`, chromedp.ByQuery))
	waitText(t, br, ".notice", "ETA was saved", 20*time.Second)
	require.Equal(t, "2031-03-15: vendor patch ships in March", textOf(t, br, "#eta-now"))

	// Change the due date.
	run(t, br, chromedp.SetValue(`#due_date`, "2031-04-30", chromedp.ByID),
		chromedp.SendKeys(`#due-reason`, "waiting for the vendor", chromedp.ByID),
		chromedp.Click(`#due-form button[type=submit]`, chromedp.ByQuery))
	waitText(t, br, ".notice", "due date was changed", 20*time.Second)
	require.Equal(t, "2031-04-30", textOf(t, br, "#due-now"))
	checkA11y(t, br, "assignment")
	screenshot(t, br, "assignment")

	// End it: a reason is asked for first (and the browser asks to confirm).
	run(t, br, chromedp.Evaluate(`window.confirmed = 0; window.confirm = () => { window.confirmed++; return true; }`, nil),
		chromedp.Click(`#end-form button[type=submit]`, chromedp.ByQuery))
	waitText(t, br, "#end-reason-error", "say why", 20*time.Second)
	run(t, br, chromedp.Evaluate(`window.confirm = () => true`, nil),
		chromedp.SendKeys(`#end-reason`, "accepted risk until the migration", chromedp.ByID),
		chromedp.Click(`#end-form button[type=submit]`, chromedp.ByQuery))
	waitText(t, br, ".notice", "was ended", 20*time.Second)
	require.Contains(t, textOf(t, br, "#state-now"), "removed")
	require.Contains(t, textOf(t, br, "#state-now"), "accepted risk until the migration")
	var forms int
	run(t, br, chromedp.Evaluate(`document.querySelectorAll("main form").length`, &forms))
	require.Zero(t, forms, "an ended assignment cannot be changed")
	// A form left open in another tab is refused, and says so.
	run(t, br, chromedp.Evaluate(asgPostJS(fmt.Sprintf("/assignments/%d/owner", mine.ID), "owner", "erin@example.com"), nil))
	waitText(t, br, "#alert", "only active assignments can be", 20*time.Second)

	// History, newest first: each change by the contributor.
	rows := asgHistory(t, br)
	require.Len(t, rows, 5, "%q", rows)
	require.Equal(t, contributorName+" | removed |  | accepted risk until the migration", rows[0])
	require.Equal(t, contributorName+" | updated | Due date: "+mine.DueDate.Format(time.DateOnly)+" → 2031-04-30 | waiting for the vendor", rows[1])
	require.Equal(t, contributorName+" | updated | ETA: none → 2031-03-15 ETA justification: none → vendor patch ships in March | ", rows[2])
	require.Equal(t, contributorName+" | updated | Owner: alice@example.com → dana@example.com | team change", rows[3])
	require.Equal(t, "admin@example.com | created |  | owns rg1", rows[4])

	// A reader sees no forms, and a form posted anyway is refused.
	rd := newBrowser(t)
	signIn(t, rd, b, b.tokenFor(t, "rita-reader", steward.RoleReader))
	run(t, rd, chromedp.Navigate(fmt.Sprintf("%s/assignments/%d", b.url, late.ID)), chromedp.WaitVisible(`#history`, chromedp.ByID))
	require.Contains(t, textOf(t, rd, "#owner-now"), "bob@example.com")
	run(t, rd, chromedp.Evaluate(`document.querySelectorAll("main form").length`, &forms))
	require.Zero(t, forms, "a reader gets no forms")
	run(t, rd, chromedp.Evaluate(asgPostJS(fmt.Sprintf("/assignments/%d/owner", late.ID), "owner", "mallory@example.com"), nil))
	waitText(t, rd, "main h1", "Not allowed", 20*time.Second)
	require.Contains(t, textOf(t, rd, "main"), "needs the contributor role")
	d, err := b.client.GetAssignment(ctx, late.ID)
	require.NoError(t, err)
	require.Equal(t, "bob@example.com", d.Owner)
	require.Len(t, d.History, 1)
}

// asgPostJS is a script that posts a form with one field from the
// current page (same origin).
func asgPostJS(action, name, value string) string {
	return fmt.Sprintf(`(() => {
		const f = document.createElement("form");
		f.method = "post"; f.action = %q;
		const i = document.createElement("input");
		i.name = %q; i.value = %q;
		f.appendChild(i); document.body.appendChild(f); f.submit(); return true;
	})()`, action, name, value)
}

func asgRowCount(t *testing.T, ctx context.Context) int {
	t.Helper()
	var n int
	run(t, ctx, chromedp.Evaluate(`document.querySelectorAll("#assignments tbody tr").length`, &n))
	return n
}

func asgValue(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	var v string
	run(t, ctx, chromedp.Value(sel, &v, chromedp.ByQuery))
	return v
}

func asgAttr(t *testing.T, ctx context.Context, sel, name string) string {
	t.Helper()
	var v string
	var ok bool
	run(t, ctx, chromedp.AttributeValue(sel, name, &v, &ok, chromedp.ByQuery))
	return v
}

func asgChecked(t *testing.T, ctx context.Context, sel string) bool {
	t.Helper()
	var on bool
	run(t, ctx, chromedp.Evaluate(fmt.Sprintf(`document.querySelector(%q).checked`, sel), &on))
	return on
}

// TestAssignmentsTicketInBrowser: a ServiceNow assignment whose ticket
// ServiceNow refused is found by the list's ticket filter, shows the reason
// and a Retry button; after a retry its page follows the creation live (no
// reload) to the ticket number, which links to the record, and the list
// then finds it by ticket state.
func TestAssignmentsTicketInBrowser(t *testing.T) {
	b := startUI(t)
	ctx := t.Context()
	vm := "/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm1"
	ids := asgAssessmentIDs(t, b, [2]string{"disk-encryption", vm}, [2]string{"open-ssh", vm})
	str := func(s string) *string { return &s }
	yes := true
	_, err := b.client.CreateIntegration(ctx, apiclient.IntegrationRequest{
		Name: str("emulator"), Scope: str("/"), InstanceURL: str(b.emuURL), Local: &yes,
		AuthMode: str("basic"), Username: str("admin"), Password: str("admin"),
	})
	require.NoError(t, err)
	_, err = b.client.CreateAssignment(ctx, apiclient.AssignmentRequest{AssessmentID: ids["open-ssh "+vm],
		Owner: "alice@example.com", RemediationTimeframeDays: 30})
	require.NoError(t, err)
	// ServiceNow does not know the assignee: the ticket fails.
	a, err := b.client.CreateAssignment(ctx, apiclient.AssignmentRequest{AssessmentID: ids["disk-encryption "+vm], Type: "servicenow",
		TicketType: "incident", AssignedTo: "new.hire@example.com", RemediationTimeframeDays: 7})
	require.NoError(t, err)
	waitAssignment(t, b.client, a.ID, func(d *apiclient.AssignmentDetail) bool {
		return d.Ticket != nil && d.Ticket.Status == steward.TicketFailed
	})

	br := newBrowser(t)
	signIn(t, br, b, b.tokenFor(t, "casey-contributor", steward.RoleContributor))
	run(t, br, chromedp.Navigate(b.url+"/assignments?ticket_status=failed"), chromedp.WaitVisible(`#assignments`, chromedp.ByID))
	list := textOf(t, br, "#assignments")
	require.Contains(t, list, "new.hire@example.com")
	require.Contains(t, list, "failed")
	require.NotContains(t, list, "alice@example.com", "a manual assignment has no ticket")
	require.Equal(t, "failed", asgValue(t, br, "#f-ticket-status"))

	run(t, br, chromedp.Click(fmt.Sprintf(`a[href="/assignments/%d"]`, a.ID), chromedp.ByQuery), chromedp.WaitVisible(`#ticket`, chromedp.ByID))
	require.Contains(t, textOf(t, br, "#ticket-status"), "failed")
	require.NotEmpty(t, textOf(t, br, "#ticket dd.bad"), "ServiceNow's reason is shown")
	checkA11y(t, br, "assignment with a failed ticket")

	// Once the user exists, Retry; the emulator answers slowly, so the page
	// shows the ticket being created, then its number without a reload.
	_, err = b.emu.AddUser(snowemu.UserSpec{UserName: "new.hire", FirstName: "New", LastName: "Hire", Email: "new.hire@example.com", Roles: []string{"itil"}})
	require.NoError(t, err)
	b.emu.SetFaults(snowemu.Faults{Latency: 3 * time.Second, PathPrefix: "/api/now/table/incident", Methods: []string{"POST"}})
	run(t, br, chromedp.Click(`#ticket form button`, chromedp.ByQuery))
	waitText(t, br, ".notice", "will be created again", 20*time.Second)
	require.Equal(t, "1500", asgAttr(t, br, "#ticket", "data-live"), "the ticket section refreshes itself while the ticket is created")
	run(t, br, chromedp.Evaluate(`window.notReloaded = true`, nil))
	waitText(t, br, "#ticket-number", "INC", 20*time.Second)
	var same bool
	run(t, br, chromedp.Evaluate(`window.notReloaded === true && !document.querySelector("#ticket[data-live]")`, &same))
	require.True(t, same, "the number arrived without a reload, and the refreshing stopped")
	number := textOf(t, br, "#ticket-number")
	href := asgAttr(t, br, "#ticket-number a", "href")
	require.True(t, strings.HasPrefix(href, b.emuURL), "the number links to the record in ServiceNow: %s", href)
	require.Contains(t, textOf(t, br, "#ticket-state"), "New")

	// The list finds it by ticket state, its number linking to ServiceNow.
	run(t, br, chromedp.Navigate(b.url+"/assignments"), chromedp.WaitVisible(`#f-ticket-state`, chromedp.ByID),
		chromedp.SetValue(`#f-ticket-state`, "New", chromedp.ByID),
		chromedp.Click(`form.filters button[type=submit]`, chromedp.ByQuery))
	asgWaitJS(t, br, `location.search.includes("ticket_state=New") && !!document.querySelector("#assignments")`, 20*time.Second)
	list = textOf(t, br, "#assignments")
	require.Contains(t, list, number)
	require.NotContains(t, list, "alice@example.com")
	require.Equal(t, href, asgAttr(t, br, fmt.Sprintf(`#assignments a[href^=%q]`, b.emuURL), "href"))
}

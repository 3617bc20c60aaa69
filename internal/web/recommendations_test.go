package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/apiclient"
	"github.com/stewardhq/steward/internal/sample"
	"github.com/stewardhq/steward/internal/snowemu"
)

const (
	recKey  = "stw-ui-disk-encryption"
	recName = "Virtual machines should encrypt their disks"
)

// recFixture is a server with findings and a ServiceNow integration whose
// webhooks reach Steward, as after `steward demo`'s first steps.
type recFixture struct {
	*uiBundle
	// ids maps the fixture's VM names to their assessment IDs.
	ids map[string]int64
}

// setupRecommendations loads the bundled Prowler samples (when samples),
// a recommendation of our own with six unhealthy VMs, one healthy and one
// not applicable, and connects the emulator.
func setupRecommendations(t *testing.T, samples bool) *recFixture {
	t.Helper()
	b := startUI(t)
	ctx := t.Context()
	if samples {
		for _, f := range sample.Files() {
			imp, err := b.client.UploadImport(ctx, bytes.NewReader(f.Data), int64(len(f.Data)), f.Name, "")
			require.NoError(t, err)
			deadline := time.Now().Add(60 * time.Second)
			for (imp.State == "queued" || imp.State == "running") && time.Now().Before(deadline) {
				time.Sleep(100 * time.Millisecond)
				imp, err = b.client.GetImport(ctx, imp.ID)
				require.NoError(t, err)
			}
			require.Equal(t, "succeeded", imp.State, "import %s: %s", f.Name, imp.Error)
		}
	}
	var batch []map[string]any
	add := func(vm, status string) {
		batch = append(batch, map[string]any{
			"resource": map[string]any{"id": "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/" + vm,
				"name": vm, "type": "Microsoft.Compute/virtualMachines", "cloud": "azure"},
			"recommendation": map[string]any{"key": recKey, "display_name": recName, "severity": "High", "source": "uitest",
				"description": "Unencrypted disks can be read by anyone who gets the storage.",
				"remediation": "Enable Azure Disk Encryption on every data disk."},
			"status": status,
		})
	}
	for i := 1; i <= 6; i++ {
		add(fmt.Sprintf("vm%d", i), "Unhealthy")
	}
	add("vm7", "Healthy")
	add("vm8", "NotApplicable")
	body, err := json.Marshal(map[string]any{"assessments": batch})
	require.NoError(t, err)
	_, err = b.client.PostAssessments(ctx, bytes.NewReader(body))
	require.NoError(t, err)
	page, err := b.client.ListAssessments(ctx, url.Values{"recommendation": {recKey}, "limit": {"100"}})
	require.NoError(t, err)
	ids := map[string]int64{}
	for _, a := range page.Items {
		ids[a.ResourceName] = a.ID
	}
	require.Len(t, ids, 8)

	str := func(s string) *string { return &s }
	yes := true
	secret := "ui-test-webhook-secret-0123456789abcdef"
	in, err := b.client.CreateIntegration(ctx, apiclient.IntegrationRequest{
		Name: str("emulator"), Scope: str("/"), InstanceURL: str(b.emuURL), Local: &yes,
		AuthMode: str("basic"), Username: str("admin"), Password: str("admin"), WebhookSecret: &secret,
	})
	require.NoError(t, err)
	require.NoError(t, b.emu.AddWebhook(snowemu.Webhook{URL: fmt.Sprintf("%s/api/v1/integrations/%d/events", b.url, in.ID),
		Secret: secret, Scheme: snowemu.SchemeSteward}))
	return &recFixture{uiBundle: b, ids: ids}
}

func (f *recFixture) recURL() string { return f.url + "/recommendations/" + recKey }

func row(id int64) string { return "#row-" + strconv.FormatInt(id, 10) }

// reloadUntil reloads the page until the element matching sel contains
// want: for changes that arrive from ServiceNow while nobody looks.
func reloadUntil(t *testing.T, ctx context.Context, pageURL, sel, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		_ = chromedp.Run(ctx, chromedp.Navigate(pageURL), chromedp.WaitVisible("main h1", chromedp.ByQuery),
			chromedp.Text(sel, &last, chromedp.ByQuery, chromedp.AtLeast(0)))
		if strings.Contains(last, want) {
			return
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Fatalf("%s never showed %q within 20s; last text: %q", sel, want, last)
}

// waitAssignment polls the API until the assignment satisfies ok.
func waitAssignment(t *testing.T, c *apiclient.Client, id int64, ok func(*apiclient.AssignmentDetail) bool) *apiclient.AssignmentDetail {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		a, err := c.GetAssignment(t.Context(), id)
		require.NoError(t, err)
		if ok(a) {
			return a
		}
		if time.Now().After(deadline) {
			t.Fatalf("assignment %d never reached the expected state; last: %+v", id, a)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestRecommendationsAssignServiceNow: the list filters; a recommendation
// shows its resources by status; assigning an unhealthy one with a
// ServiceNow incident shows the ticket number when it exists without a
// reload; the agent resolving it ends the assignment and reassigning it
// changes the owner on the page.
func TestRecommendationsAssignServiceNow(t *testing.T) {
	f := setupRecommendations(t, true)
	ctx := newBrowser(t)
	signIn(t, ctx, f.uiBundle, f.token)

	awsPage, err := f.client.ListRecommendations(t.Context(), url.Values{"cloud": {"aws"}})
	require.NoError(t, err)
	require.NotEmpty(t, awsPage.Items, "the AWS sample has recommendations")
	awsName := awsPage.Items[0].DisplayName

	// The list, then filtered to High Azure recommendations.
	run(t, ctx, chromedp.Navigate(f.url+"/recommendations"), chromedp.WaitVisible(`#recommendations`, chromedp.ByID))
	all := textOf(t, ctx, "#recommendations")
	require.Contains(t, all, recName)
	require.Contains(t, all, awsName)
	checkA11y(t, ctx, "recommendations")
	screenshot(t, ctx, "recommendations")
	run(t, ctx,
		chromedp.SetValue(`#f-severity`, "High", chromedp.ByID),
		chromedp.SetValue(`#f-cloud`, "azure", chromedp.ByID),
		chromedp.Click(`form.filters button[type=submit]`, chromedp.ByQuery),
		// Only a filtered list offers Clear.
		chromedp.WaitVisible(`form.filters a.button`, chromedp.ByQuery),
	)
	filtered := textOf(t, ctx, "#recommendations")
	require.Contains(t, filtered, recName)
	require.NotContains(t, filtered, awsName, "the cloud filter hides AWS recommendations")
	var loc string
	run(t, ctx, chromedp.Location(&loc))
	require.Contains(t, loc, "cloud=azure")
	require.Contains(t, loc, "severity=High")
	// The row's counts.
	var rowText string
	run(t, ctx, chromedp.Text(`//tr[td/a[normalize-space()="`+recName+`"]]`, &rowText, chromedp.BySearch))
	require.Regexp(t, `High\s+uitest\s+6\s+1\s+1`, rowText, "unhealthy, healthy and not applicable counts")

	// A filter the API refuses is shown at its field, not as a crash.
	run(t, ctx, chromedp.Navigate(f.url+"/recommendations?cloud=mars"), chromedp.WaitVisible(`#filter-error`, chromedp.ByID))
	require.Contains(t, textOf(t, ctx, "#filter-error"), "unknown cloud")

	// The recommendation.
	run(t, ctx, chromedp.Navigate(f.url+"/recommendations?cloud=azure"),
		chromedp.Click(`//a[normalize-space()="`+recName+`"]`, chromedp.BySearch),
		chromedp.WaitVisible(`#unhealthy-table`, chromedp.ByID))
	require.Equal(t, recName, textOf(t, ctx, "main h1"))
	require.Contains(t, textOf(t, ctx, "#description"), "Unencrypted disks")
	require.Contains(t, textOf(t, ctx, "#remediation"), "Azure Disk Encryption")
	require.Contains(t, textOf(t, ctx, "#unhealthy"), "(6)")
	require.Contains(t, textOf(t, ctx, "#healthy-table"), "vm7")
	require.Contains(t, textOf(t, ctx, "#not-applicable-table"), "vm8")
	require.NotContains(t, textOf(t, ctx, "#unhealthy-table"), "vm7")

	// Assign vm1 with an incident. The emulator answers creates slowly, so
	// the page shows the ticket being created first.
	f.emu.SetFaults(snowemu.Faults{Latency: 3 * time.Second, PathPrefix: "/api/now/table/incident", Methods: []string{"POST"}})
	run(t, ctx, chromedp.Click(row(f.ids["vm1"])+` a[href*="/assign"]`, chromedp.ByQuery), chromedp.WaitVisible(`#owner`, chromedp.ByID))
	checkA11y(t, ctx, "assign owner")
	screenshot(t, ctx, "assign")
	require.Contains(t, textOf(t, ctx, "#targets"), "vm1")
	var checked bool
	run(t, ctx, chromedp.Evaluate(`document.getElementById("type-servicenow").checked`, &checked))
	require.True(t, checked, "with an integration, ServiceNow is the default type")

	// No owner: the message is at the field.
	run(t, ctx, chromedp.Click(`form button.primary`, chromedp.ByQuery), chromedp.WaitVisible(`#owner-error`, chromedp.ByID))
	require.Contains(t, textOf(t, ctx, "#owner-error"), "owner's e-mail")
	var described string
	run(t, ctx, chromedp.AttributeValue(`#owner`, "aria-describedby", &described, nil, chromedp.ByID))
	require.Contains(t, described, "owner-error")
	checkA11y(t, ctx, "assign owner with an error")

	run(t, ctx,
		chromedp.SendKeys(`#owner`, "beth.anglin@example.com", chromedp.ByID),
		chromedp.SetValue(`#ticket_type`, "incident", chromedp.ByID),
		chromedp.SetValue(`#timeframe`, "14", chromedp.ByID),
		chromedp.Click(`form button.primary`, chromedp.ByQuery),
		chromedp.WaitVisible(`#assigned-notice`, chromedp.ByID),
		chromedp.Location(&loc),
	)
	require.Contains(t, loc, "/recommendations/"+recKey+"?assigned=")
	r1 := row(f.ids["vm1"])
	require.Contains(t, textOf(t, ctx, r1+" .owner"), "beth.anglin@example.com")
	require.Contains(t, textOf(t, ctx, r1+" .ticket"), "Creating ticket")
	var cls string
	run(t, ctx, chromedp.AttributeValue(r1, "class", &cls, nil, chromedp.ByQuery))
	require.Contains(t, cls, "highlight")
	// The number appears without a reload: the marker survives. The row
	// refreshes from its own URL, not the whole page's.
	var src string
	run(t, ctx, chromedp.AttributeValue(r1, "data-src", &src, nil, chromedp.ByQuery))
	require.Contains(t, src, fmt.Sprintf("/recommendations/%s/rows/%d", recKey, f.ids["vm1"]))
	run(t, ctx, chromedp.Evaluate(`window.stewardNoReload = 1`, nil))
	waitText(t, ctx, r1+" .ticket-number", "INC", 20*time.Second)
	var marker int
	run(t, ctx, chromedp.Evaluate(`window.stewardNoReload || 0`, &marker))
	require.Equal(t, 1, marker, "the page was not reloaded")
	run(t, ctx, chromedp.AttributeValue(r1, "class", &cls, nil, chromedp.ByQuery))
	require.Contains(t, cls, "highlight", "the refreshed row keeps its highlight")
	var cells int
	run(t, ctx, chromedp.Evaluate(`document.querySelector(`+strconv.Quote(r1)+`).cells.length`, &cells))
	require.Equal(t, 6, cells, "the refreshed row keeps the table's columns")
	f.emu.SetFaults(snowemu.Faults{})

	asg, err := f.client.ListAssignments(t.Context(), url.Values{"resource": {"/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1"}})
	require.NoError(t, err)
	require.Len(t, asg.Items, 1)
	a1 := asg.Items[0]
	require.NotNil(t, a1.Ticket)
	number := a1.Ticket.Number
	require.Equal(t, number, textOf(t, ctx, r1+" .ticket-number"))
	var href string
	run(t, ctx, chromedp.AttributeValue(r1+" .ticket-number", "href", &href, nil, chromedp.ByQuery))
	require.Equal(t, a1.Ticket.Link, href)
	require.True(t, strings.HasPrefix(href, f.emuURL), "links to the ServiceNow record: %s", href)
	require.Equal(t, a1.DueDate.Format("2006-01-02"), textOf(t, ctx, r1+" .due")[:10])
	checkA11y(t, ctx, "recommendation")
	screenshot(t, ctx, "recommendation")

	// The agent resolves the incident; the webhook ends the assignment.
	_, err = f.emu.SetState("incident", number, snowemu.StateChange{State: "Resolved", CloseCode: "Solution provided",
		CloseNotes: "Encrypted.", User: "beth.anglin"})
	require.NoError(t, err)
	reloadUntil(t, ctx, f.recURL(), r1+" .owner", "completed")
	require.Contains(t, textOf(t, ctx, r1+" .owner"), "Unassigned")
	require.Contains(t, textOf(t, ctx, r1+" .ticket"), number)
	require.Contains(t, textOf(t, ctx, r1+" .ticket"), "Resolved")

	// Another incident, reassigned by the agent: the new owner shows.
	a2, err := f.client.CreateAssignment(t.Context(), apiclient.AssignmentRequest{AssessmentID: f.ids["vm2"], Type: "servicenow",
		TicketType: "incident", AssignedTo: "beth.anglin@example.com", RemediationTimeframeDays: 30})
	require.NoError(t, err)
	d2 := waitAssignment(t, f.client, a2.ID, func(a *apiclient.AssignmentDetail) bool {
		return a.Ticket != nil && a.Ticket.Number != ""
	})
	_, err = f.emu.Reassign("incident", d2.Ticket.Number, "don.goodliffe", "beth.anglin")
	require.NoError(t, err)
	reloadUntil(t, ctx, f.recURL(), row(f.ids["vm2"])+" .owner", "don.goodliffe@example.com")
}

// TestRecommendationsBulkAndRetry: two resources assigned at once; a bulk
// assign that partly fails keeps the ones that succeeded and names the
// failure; a ticket ServiceNow refused shows its reason and a Retry button
// that gets it created.
func TestRecommendationsBulkAndRetry(t *testing.T) {
	f := setupRecommendations(t, false)
	ctx := newBrowser(t)
	signIn(t, ctx, f.uiBundle, f.token)

	// Nothing ticked: back to the list, saying so.
	run(t, ctx, chromedp.Navigate(f.recURL()), chromedp.WaitVisible(`#unhealthy-table`, chromedp.ByID),
		chromedp.Click(`#bulk-assign button`, chromedp.ByQuery), chromedp.WaitVisible(`#none-selected`, chromedp.ByID))

	run(t, ctx, chromedp.Navigate(f.recURL()), chromedp.WaitVisible(`#unhealthy-table`, chromedp.ByID),
		chromedp.Click(`#sel-`+strconv.FormatInt(f.ids["vm3"], 10), chromedp.ByQuery),
		chromedp.Click(`#sel-`+strconv.FormatInt(f.ids["vm4"], 10), chromedp.ByQuery),
		chromedp.Click(`#bulk-assign button`, chromedp.ByQuery),
		chromedp.WaitVisible(`#owner`, chromedp.ByID),
	)
	targets := textOf(t, ctx, "#targets")
	require.Contains(t, targets, "vm3")
	require.Contains(t, targets, "vm4")
	require.NotContains(t, targets, "vm5")
	require.Contains(t, textOf(t, ctx, "#selected"), "2 selected")
	run(t, ctx,
		chromedp.Click(`#type-manual`, chromedp.ByID),
		chromedp.SendKeys(`#owner`, "abel.tuter@example.com", chromedp.ByID),
		chromedp.SetValue(`#timeframe`, "date", chromedp.ByID),
		chromedp.SetValue(`#due_date`, "2030-01-31", chromedp.ByID),
		chromedp.Click(`form button.primary`, chromedp.ByQuery),
		chromedp.WaitVisible(`#assigned-notice`, chromedp.ByID),
	)
	require.Contains(t, textOf(t, ctx, "#assigned-notice"), "Assigned 2 resources")
	for _, vm := range []string{"vm3", "vm4"} {
		require.Contains(t, textOf(t, ctx, row(f.ids[vm])+" .owner"), "abel.tuter@example.com")
		require.Equal(t, "2030-01-31", textOf(t, ctx, row(f.ids[vm])+" .due"))
		var cls string
		run(t, ctx, chromedp.AttributeValue(row(f.ids[vm]), "class", &cls, nil, chromedp.ByQuery))
		require.Contains(t, cls, "highlight")
	}
	require.Contains(t, textOf(t, ctx, row(f.ids["vm5"])+" .owner"), "Unassigned")

	// An integration whose scope does not hold the resource: the API's
	// message is shown at the integration field and nothing is created.
	str := func(s string) *string { return &s }
	yes := true
	narrow, err := f.client.CreateIntegration(t.Context(), apiclient.IntegrationRequest{
		Name: str("narrow"), Scope: str("/subscriptions/elsewhere"), InstanceURL: str(f.emuURL), Local: &yes,
		AuthMode: str("basic"), Username: str("admin"), Password: str("admin"),
	})
	require.NoError(t, err)
	run(t, ctx, chromedp.Navigate(fmt.Sprintf("%s/assign?assessment=%d", f.recURL(), f.ids["vm5"])),
		chromedp.WaitVisible(`#owner`, chromedp.ByID),
		chromedp.SendKeys(`#owner`, "beth.anglin@example.com", chromedp.ByID),
		chromedp.SetValue(`#integration`, strconv.FormatInt(narrow.ID, 10), chromedp.ByID),
		chromedp.Click(`form button.primary`, chromedp.ByQuery),
		chromedp.WaitVisible(`#integration-error`, chromedp.ByID),
	)
	require.Contains(t, textOf(t, ctx, "#integration-error"), "outside the scope")
	var kept string
	run(t, ctx, chromedp.Value(`#owner`, &kept, chromedp.ByID))
	require.Equal(t, "beth.anglin@example.com", kept, "the form keeps what was entered")
	none, err := f.client.ListAssignments(t.Context(), url.Values{"resource": {"/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm5"}, "state": {"all"}})
	require.NoError(t, err)
	require.Empty(t, none.Items)

	// vm3 is assigned already: assigning vm3 and vm5 together assigns vm5
	// and says why vm3 was not.
	run(t, ctx, chromedp.Navigate(fmt.Sprintf("%s/assign?assessment=%d&assessment=%d", f.recURL(), f.ids["vm3"], f.ids["vm5"])),
		chromedp.WaitVisible(`#owner`, chromedp.ByID),
		chromedp.Click(`#type-manual`, chromedp.ByID),
		chromedp.SendKeys(`#owner`, "abel.tuter@example.com", chromedp.ByID),
		chromedp.Click(`form button.primary`, chromedp.ByQuery),
		chromedp.WaitVisible(`#created-notice`, chromedp.ByID),
	)
	require.Contains(t, textOf(t, ctx, "#created-notice"), "vm5")
	require.Contains(t, textOf(t, ctx, "#form-error"), "1 of 2")
	failed := textOf(t, ctx, "#targets")
	require.Contains(t, failed, "vm3")
	require.NotContains(t, failed, "vm5")
	require.Contains(t, textOf(t, ctx, ".target-error"), "already has active assignment")
	checkA11y(t, ctx, "assign owner, partly failed")
	run(t, ctx, chromedp.Click(`#created-notice a`, chromedp.ByQuery), chromedp.WaitVisible(`#assigned-notice`, chromedp.ByID))
	require.Contains(t, textOf(t, ctx, row(f.ids["vm5"])+" .owner"), "abel.tuter@example.com")

	// ServiceNow does not know the assignee: the ticket fails with the
	// reason; once the user exists, Retry creates it.
	a6, err := f.client.CreateAssignment(t.Context(), apiclient.AssignmentRequest{AssessmentID: f.ids["vm6"], Type: "servicenow",
		TicketType: "incident", AssignedTo: "new.hire@example.com", RemediationTimeframeDays: 7})
	require.NoError(t, err)
	waitAssignment(t, f.client, a6.ID, func(a *apiclient.AssignmentDetail) bool {
		return a.Ticket != nil && a.Ticket.Status == steward.TicketFailed
	})
	r6 := row(f.ids["vm6"])
	run(t, ctx, chromedp.Navigate(f.recURL()), chromedp.WaitVisible(r6+" button", chromedp.ByQuery))
	require.Contains(t, textOf(t, ctx, r6+" .ticket"), "new.hire@example.com")
	require.Contains(t, textOf(t, ctx, r6+" .ticket"), "Ticket failed")
	_, err = f.emu.AddUser(snowemu.UserSpec{UserName: "new.hire", FirstName: "New", LastName: "Hire", Email: "new.hire@example.com", Roles: []string{"itil"}})
	require.NoError(t, err)
	run(t, ctx, chromedp.Click(r6+" button", chromedp.ByQuery), chromedp.WaitVisible(`#retried-notice`, chromedp.ByID))
	waitText(t, ctx, r6+" .ticket-number", "INC", 20*time.Second)
}

// TestRecommendationsReaderCannotAssign: a reader sees the resources but
// no assign actions, and the assign form and its POST answer 403.
func TestRecommendationsReaderCannotAssign(t *testing.T) {
	f := setupRecommendations(t, false)
	ctx := newBrowser(t)
	signIn(t, ctx, f.uiBundle, f.tokenFor(t, "viewer", steward.RoleReader))

	run(t, ctx, chromedp.Navigate(f.recURL()), chromedp.WaitVisible(`#unhealthy-table`, chromedp.ByID))
	require.Contains(t, textOf(t, ctx, "#unhealthy-table"), "vm1")
	main := textOf(t, ctx, "main")
	require.NotContains(t, main, "Assign owner")
	var n int
	run(t, ctx, chromedp.Evaluate(`document.querySelectorAll('main input[name=assessment], main a[href*="/assign?"], #bulk-assign').length`, &n))
	require.Zero(t, n, "no assign controls for a reader")
	checkA11y(t, ctx, "recommendation as reader")

	vm1 := strconv.FormatInt(f.ids["vm1"], 10)
	run(t, ctx, chromedp.Navigate(f.recURL()+"/assign?assessment="+vm1), chromedp.WaitVisible(`main h1`, chromedp.ByQuery))
	require.Equal(t, "Not allowed", textOf(t, ctx, "main h1"))

	// A form posted from Steward's own origin is refused too.
	run(t, ctx, chromedp.Navigate(f.recURL()), chromedp.WaitVisible(`#unhealthy-table`, chromedp.ByID),
		chromedp.Evaluate(`(() => { const f = document.createElement("form"); f.method = "post"; f.action = "/recommendations/`+recKey+`/assign";
for (const [k, v] of [["assessment", "`+vm1+`"], ["type", "manual"], ["owner", "mallory@example.com"], ["timeframe", "7"]]) {
  const i = document.createElement("input"); i.type = "hidden"; i.name = k; i.value = v; f.appendChild(i); }
document.body.appendChild(f); f.submit(); return true; })()`, nil),
		chromedp.WaitVisible(`//h1[text()="Not allowed"]`, chromedp.BySearch))
	require.Contains(t, textOf(t, ctx, "main"), "contributor")
	list, err := f.client.ListAssignments(t.Context(), url.Values{"recommendation": {recKey}, "state": {"all"}})
	require.NoError(t, err)
	require.Empty(t, list.Items, "the reader's post changed nothing")
}

// TestRecommendationsPaging: the list pages with the API's cursor and keeps
// its filters; a recommendation's sections page on their own.
func TestRecommendationsPaging(t *testing.T) {
	b := startUI(t)
	var batch []map[string]any
	for i := range 55 {
		batch = append(batch, map[string]any{
			"resource":       map[string]any{"id": "/subscriptions/s1/vm-shared", "cloud": "azure"},
			"recommendation": map[string]any{"key": fmt.Sprintf("paging-%02d", i), "display_name": fmt.Sprintf("Paging check %02d", i), "severity": "Low", "source": "pager"},
			"status":         "Unhealthy",
		})
		batch = append(batch, map[string]any{
			"resource":       map[string]any{"id": fmt.Sprintf("/subscriptions/s1/vm-%02d", i), "name": fmt.Sprintf("vm-%02d", i), "cloud": "azure"},
			"recommendation": map[string]any{"key": "paging-00", "display_name": "Paging check 00", "severity": "Low", "source": "pager"},
			"status":         "Healthy",
		})
	}
	batch = append(batch, map[string]any{
		"resource":       map[string]any{"id": "/subscriptions/s1/other", "cloud": "azure"},
		"recommendation": map[string]any{"key": "other-source", "display_name": "Not from the pager", "severity": "Low", "source": "elsewhere"},
		"status":         "Unhealthy",
	})
	body, err := json.Marshal(map[string]any{"assessments": batch})
	require.NoError(t, err)
	_, err = b.client.PostAssessments(t.Context(), bytes.NewReader(body))
	require.NoError(t, err)

	ctx := newBrowser(t)
	signIn(t, ctx, b, b.token)
	count := func(sel string) int {
		var n int
		run(t, ctx, chromedp.Evaluate(`document.querySelectorAll(`+strconv.Quote(sel)+`).length`, &n))
		return n
	}
	run(t, ctx, chromedp.Navigate(b.url+"/recommendations?source=pager"), chromedp.WaitVisible(`#recommendations`, chromedp.ByID))
	require.Equal(t, 50, count("#recommendations tbody tr"))
	run(t, ctx, chromedp.Click(`a[rel=next]`, chromedp.ByQuery), chromedp.WaitVisible(`//a[text()="First page"]`, chromedp.BySearch))
	var loc string
	run(t, ctx, chromedp.Location(&loc))
	require.Contains(t, loc, "source=pager")
	require.Contains(t, loc, "cursor=")
	require.Equal(t, 5, count("#recommendations tbody tr"), "the second page holds the rest, still filtered")
	require.NotContains(t, textOf(t, ctx, "#recommendations"), "Not from the pager")
	require.Zero(t, count("a[rel=next]"))

	// The healthy section of paging-00 has 55 resources: 50, then 5.
	run(t, ctx, chromedp.Navigate(b.url+"/recommendations/paging-00"), chromedp.WaitVisible(`#healthy-table`, chromedp.ByID))
	require.Equal(t, 50, count("#healthy-table tbody tr"))
	require.Equal(t, 1, count("#unhealthy-table tbody tr"))
	run(t, ctx, chromedp.Click(`nav[aria-label="Healthy resources pages"] a[rel=next]`, chromedp.ByQuery),
		chromedp.WaitVisible(`//nav[@aria-label="Healthy resources pages"]/a[text()="First page"]`, chromedp.BySearch))
	require.Equal(t, 5, count("#healthy-table tbody tr"))
	require.Equal(t, 1, count("#unhealthy-table tbody tr"), "the other sections stay")
}

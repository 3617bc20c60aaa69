package web_test

import (
	"bytes"
	"encoding/json"
	"net/url"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/apiclient"
)

// finding is one row of a Steward JSON batch.
func finding(rec, sev, resource, cloud, status string) map[string]any {
	return map[string]any{
		"resource":       map[string]any{"id": resource, "cloud": cloud, "type": "Microsoft.Compute/virtualMachines"},
		"recommendation": map[string]any{"key": rec, "display_name": "Check " + rec, "severity": sev},
		"status":         status,
	}
}

func postFindings(t *testing.T, c *apiclient.Client, rows ...map[string]any) {
	t.Helper()
	body, err := json.Marshal(map[string]any{"assessments": rows})
	require.NoError(t, err)
	_, err = c.PostAssessments(t.Context(), bytes.NewReader(body))
	require.NoError(t, err)
}

// TestOverviewInBrowser: the overview counts unhealthy findings by
// severity and cloud, splits assignments by due date, shows each
// integration's sync health and the recent activity; a scope-limited user
// sees only its scope's counts and no audit log.
func TestOverviewInBrowser(t *testing.T) {
	b := startUI(t)
	postFindings(t, b.client,
		finding("vm-encryption", "High", "/subscriptions/s1/resourceGroups/a/providers/Microsoft.Compute/virtualMachines/vm1", "azure", "Unhealthy"),
		finding("vm-encryption", "High", "/subscriptions/s1/resourceGroups/a/providers/Microsoft.Compute/virtualMachines/vm2", "azure", "Unhealthy"),
		finding("vm-encryption", "High", "/subscriptions/s2/resourceGroups/b/providers/Microsoft.Compute/virtualMachines/vm3", "azure", "Unhealthy"),
		finding("s3-public", "Medium", "arn:aws:s3:::bucket-1", "aws", "Unhealthy"),
		finding("s3-public", "Medium", "arn:aws:s3:::bucket-2", "aws", "Healthy"),
	)
	list, err := b.client.ListAssessments(t.Context(), url.Values{"status": {"Unhealthy"}})
	require.NoError(t, err)
	require.Len(t, list.Items, 4)
	days := map[string]int{"vm1": 3, "vm2": 30}
	for _, a := range list.Items {
		for suffix, d := range days {
			if len(a.ResourceID) > 3 && a.ResourceID[len(a.ResourceID)-3:] == suffix {
				_, err := b.client.CreateAssignment(t.Context(), apiclient.AssignmentRequest{AssessmentID: a.ID, Owner: "owner@example.com", RemediationTimeframeDays: d})
				require.NoError(t, err)
			}
		}
	}

	ctx := newBrowser(t)
	signIn(t, ctx, b, b.token)
	// The summaries behind the counts are recomputed by a job; reload until
	// they are in.
	deadline := time.Now().Add(20 * time.Second)
	for {
		run(t, ctx, chromedp.Navigate(b.url+"/"), chromedp.WaitVisible(`main h1`, chromedp.ByQuery))
		var n int
		run(t, ctx, chromedp.Evaluate(`document.querySelectorAll("#unhealthy tbody tr").length`, &n))
		if n == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	table := textOf(t, ctx, "#unhealthy")
	require.Contains(t, table, "High")
	require.Contains(t, table, "Medium")
	var cells []string
	run(t, ctx, chromedp.Evaluate(`[...document.querySelectorAll("#unhealthy tbody tr")].map(tr => [...tr.children].map(c => c.textContent.trim()).join("|"))`, &cells))
	require.Equal(t, []string{"High|0|3|3", "Medium|1|0|1"}, cells, "columns aws, azure, total: %s", textOf(t, ctx, "#unhealthy thead"))
	require.Equal(t, "2", textOf(t, ctx, "#active-count"))
	require.Equal(t, "0", textOf(t, ctx, "#overdue-count"))
	require.Equal(t, "1", textOf(t, ctx, "#due-soon-count"))
	require.Equal(t, "1", textOf(t, ctx, "#on-time-count"))
	require.Contains(t, textOf(t, ctx, "#activity"), "token.created", "the owner token's creation is in the audit log")
	checkA11y(t, ctx, "overview")
	screenshot(t, ctx, "overview")

	// On a phone the page reflows: nothing wider than the screen but the
	// tables, which scroll in their own box.
	var overflow bool
	run(t, ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Reload(),
		chromedp.WaitVisible(`#unhealthy`, chromedp.ByID),
		chromedp.Evaluate(`document.documentElement.scrollWidth > window.innerWidth`, &overflow))
	require.False(t, overflow, "the overview is wider than a phone's screen")
	screenshot(t, ctx, "overview-phone")
	run(t, ctx, chromedp.EmulateViewport(1280, 900))

	// A user limited to subscription s1 sees its two findings only, and no
	// audit log.
	scoped, err := b.client.CreateToken(t.Context(), steward.TokenCreate{Name: "s1-viewer", Role: steward.RoleReader, Scope: "/subscriptions/s1"})
	require.NoError(t, err)
	ctx2 := newBrowser(t)
	signIn(t, ctx2, b, scoped.Secret)
	var cells2 []string
	run(t, ctx2, chromedp.Evaluate(`[...document.querySelectorAll("#unhealthy tbody tr")].map(tr => [...tr.children].map(c => c.textContent.trim()).join("|"))`, &cells2))
	require.Equal(t, []string{"High|2|2"}, cells2)
	require.Contains(t, textOf(t, ctx2, "main"), "not shown to a scope-limited sign-in")
}

package server_test

import (
	"bytes"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/apiclient"
)

// TestOverviewCounts: GET /api/v1/overview counts unhealthy findings by
// severity and cloud within the caller's scope, and splits active
// assignments into overdue, due soon and on time as of the given time.
func TestOverviewCounts(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	_, err := b.client.PostAssessments(ctx, bytes.NewReader(batch(
		row("enc", "High", "/subscriptions/s1/vm1", "Unhealthy"),
		row("enc", "High", "/subscriptions/s2/vm2", "Unhealthy"),
		row("tls", "Low", "/subscriptions/s1/vm1", "Unhealthy"),
		row("tls", "Low", "/subscriptions/s2/vm2", "Healthy"),
	)))
	require.NoError(t, err)
	list, err := b.client.ListAssessments(ctx, url.Values{"status": {"Unhealthy"}})
	require.NoError(t, err)
	require.Len(t, list.Items, 3)
	for i, a := range list.Items {
		_, err := b.client.CreateAssignment(ctx, apiclient.AssignmentRequest{AssessmentID: a.ID, Owner: "o@example.com", RemediationTimeframeDays: []int{3, 14, 30}[i]})
		require.NoError(t, err)
	}

	// Unscoped counts come from the summaries a job recomputes.
	require.Eventually(t, func() bool {
		o, err := b.client.Overview(ctx)
		require.NoError(t, err)
		return len(o.Unhealthy) == 2
	}, 20*time.Second, 100*time.Millisecond)
	o, err := b.client.Overview(ctx)
	require.NoError(t, err)
	require.Equal(t, []steward.UnhealthyCount{{Severity: "High", Cloud: "azure", Count: 2}, {Severity: "Low", Cloud: "azure", Count: 1}}, o.Unhealthy)
	require.Equal(t, steward.AssignmentCounts{Active: 3, DueSoon: 1, OnTime: 2}, o.Assignments)

	// Twenty days on, the 3- and 14-day ones are overdue and the 30-day one
	// is due in 10 days: on time.
	later, err := b.srv.DB.FindOverview(ctx, "", time.Now().Add(20*24*time.Hour), 7*24*time.Hour)
	require.NoError(t, err)
	require.Equal(t, steward.AssignmentCounts{Active: 3, Overdue: 2, OnTime: 1}, later.Assignments)

	// A scope counts only what is inside it.
	scoped, err := b.client.CreateToken(ctx, steward.TokenCreate{Name: "s1", Role: steward.RoleReader, Scope: "/subscriptions/s1"})
	require.NoError(t, err)
	sc, err := apiclient.New(b.url, scoped.Secret)
	require.NoError(t, err)
	so, err := sc.Overview(ctx)
	require.NoError(t, err)
	require.Equal(t, []steward.UnhealthyCount{{Severity: "High", Cloud: "azure", Count: 1}, {Severity: "Low", Cloud: "azure", Count: 1}}, so.Unhealthy)
	require.Equal(t, 2, so.Assignments.Active)
}

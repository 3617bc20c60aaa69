package server_test

import (
	"bytes"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward/internal/apiclient"
)

// TestAssignmentsOfAssessments: GET /api/v1/assignments?assessment=ID,ID
// returns the assignments of a page of findings in one call.
func TestAssignmentsOfAssessments(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	_, err := b.client.PostAssessments(ctx, bytes.NewReader(batch(
		row("enc", "High", "/subscriptions/s1/vm1", "Unhealthy"),
		row("enc", "High", "/subscriptions/s1/vm2", "Unhealthy"),
		row("enc", "High", "/subscriptions/s1/vm3", "Unhealthy"),
	)))
	require.NoError(t, err)
	list, err := b.client.ListAssessments(ctx, url.Values{"status": {"Unhealthy"}})
	require.NoError(t, err)
	require.Len(t, list.Items, 3)
	byAssessment := map[int64]int64{}
	for _, a := range list.Items {
		g, err := b.client.CreateAssignment(ctx, apiclient.AssignmentRequest{AssessmentID: a.ID, Owner: "o@example.com", RemediationTimeframeDays: 7})
		require.NoError(t, err)
		byAssessment[a.ID] = g.ID
	}
	first, second := list.Items[0].ID, list.Items[1].ID
	page, err := b.client.ListAssignments(ctx, url.Values{"assessment": {strconv.FormatInt(first, 10) + "," + strconv.FormatInt(second, 10)}})
	require.NoError(t, err)
	var got []int64
	for _, g := range page.Items {
		got = append(got, g.ID)
	}
	require.ElementsMatch(t, []int64{byAssessment[first], byAssessment[second]}, got)

	_, err = b.client.ListAssignments(ctx, url.Values{"assessment": {"1,x"}})
	require.ErrorContains(t, err, `assessment "x" is not an ID`)
	many := strings.Repeat("1,", 501)
	_, err = b.client.ListAssignments(ctx, url.Values{"assessment": {many}})
	require.ErrorContains(t, err, "at most 500")
}

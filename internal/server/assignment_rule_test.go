package server_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward/internal/assignment"
	"github.com/stewardhq/steward/internal/store"
)

// TestRuleAssignmentAnswers: an assignment a governance rule made names the
// rule and its condition in every answer, and those answers match the
// OpenAPI document (b.http checks them).
func TestRuleAssignmentAnswers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	status, _ := b.rawRequest(t, "POST", "/api/v1/assessments", "application/json",
		batch(row("r1", "High", "/subscriptions/s1/vm1", "Unhealthy")))
	require.Equal(t, 200, status)
	page, _, err := b.srv.DB.FindAssessments(ctx, store.AssessmentFilter{})
	require.NoError(t, err)
	require.Len(t, page, 1)

	var id int64
	require.NoError(t, b.srv.DB.WithTx(ctx, func(tx *store.Tx) error {
		a, err := b.srv.Tickets.Assignments().Create(ctx, tx, assignment.CreateRequest{AssessmentID: page[0].ID,
			Owner: "alice@example.com", RemediationTimeframeDays: 14, RuleID: 42, RuleCondition: "severity in [High]"}, "rules")
		if err != nil {
			return err
		}
		id = a.ID
		return nil
	}))

	for _, path := range []string{fmt.Sprintf("/api/v1/assignments/%d", id), "/api/v1/assignments"} {
		status, body := b.rawRequest(t, "GET", path, "", nil)
		require.Equal(t, 200, status, "%s: %v", path, body)
		got := body
		if items, ok := body["items"].([]any); ok {
			require.Len(t, items, 1)
			got = items[0].(map[string]any)
		}
		require.EqualValues(t, 42, got["rule_id"], path)
		require.Equal(t, "severity in [High]", got["rule_condition"], path)
	}
}

package server_test

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/apiclient"
	"github.com/stewardhq/steward/internal/auth/authtest"
)

// TestRulesAPI drives the rule routes through the validating client, so
// every answer is checked against /api/openapi.json, and checks that a
// token limited to a scope sees and changes only the rules inside it.
func TestRulesAPI(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	_, err := b.client.PostAssessments(ctx, bytes.NewReader(batch(
		row("rec-a", "High", "/subscriptions/s1/resourceGroups/rg/providers/vm1", "Unhealthy"),
		row("rec-b", "Low", "/subscriptions/s2/resourceGroups/rg/providers/vm2", "Unhealthy"),
	)))
	require.NoError(t, err)

	set := map[string]any{"rules": []map[string]any{
		{"name": "s1-high", "priority": 10, "scope": "/subscriptions/s1", "when": []map[string]any{{"severity": []string{"High", "Critical"}}},
			"owner": map[string]any{"tag": "owner", "fallback": "secops@example.com"}, "due_in_days": 14},
		{"name": "s2-all", "priority": 20, "scope": "/subscriptions/s2", "when": []map[string]any{{"severity": []string{"Low"}}},
			"owner": map[string]any{"email": "ops@example.com"}, "due_in_days": 30},
	}}
	plan, err := b.client.PlanRules(ctx, set, false, false)
	require.NoError(t, err)
	require.Len(t, plan.Create, 2)
	for _, c := range plan.Create {
		require.Equal(t, 1, c.Assign, "%s would assign its one unassigned finding", c.Name)
	}
	rules, err := b.client.ListRules(ctx)
	require.NoError(t, err)
	require.Empty(t, rules.Items, "a plan changes nothing")

	_, err = b.client.PlanRules(ctx, set, false, true)
	require.NoError(t, err)
	again, err := b.client.PlanRules(ctx, set, false, false)
	require.NoError(t, err)
	require.Empty(t, again.Create)
	require.Empty(t, again.Change)
	require.Empty(t, again.Delete)
	rule, err := b.client.GetRule(ctx, "s1-high")
	require.NoError(t, err)
	require.Equal(t, steward.Scope("/subscriptions/s1"), rule.Scope)
	_, err = b.client.SetScopeTags(ctx, "/subscriptions/s1", map[string]string{"owner": "alice@example.com"})
	require.NoError(t, err)
	tags, err := b.client.ListScopeTags(ctx)
	require.NoError(t, err)
	require.Len(t, tags.Items, 1)

	scoped, err := apiclient.New(b.url, authtest.ScopedToken(t, b.srv.DB, "s1-reader", steward.RoleReader, "/subscriptions/s1"))
	require.NoError(t, err)
	visible, err := scoped.ListRules(ctx)
	require.NoError(t, err)
	require.Len(t, visible.Items, 1)
	require.Equal(t, "s1-high", visible.Items[0].Name)
	_, err = scoped.GetRule(ctx, "s2-all")
	requireRefused(t, err, 404, "")
	admin, err := apiclient.New(b.url, authtest.ScopedToken(t, b.srv.DB, "s1-admin", steward.RoleSecurityAdmin, "/subscriptions/s1"))
	require.NoError(t, err)
	_, err = admin.DeleteRule(ctx, "s2-all")
	requireRefused(t, err, 404, "")

	_, err = b.client.DeleteRule(ctx, "s2-all")
	require.NoError(t, err)
	rules, err = b.client.ListRules(ctx)
	require.NoError(t, err)
	require.Len(t, rules.Items, 1)
}

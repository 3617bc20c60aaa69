package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/apiclient"
	"github.com/stewardhq/steward/internal/auth/authtest"
)

const rulesFile = `rules:
  - name: high-to-platform
    priority: 10
    scope: /subscriptions/sub-01
    exclude: [/subscriptions/sub-01/resourceGroups/sandbox]
    when:
      - {severity: [High, Critical]}
      - {recommendation: [rec-low], cloud: [azure]}
    owner: {tag: owner, fallback: secops@example.com}
    due_in_days: 14
    grace_period: true
  - name: everything-else
    priority: 900
    scope: /
    when:
      - {severity: [Low, Medium]}
    owner: {email: triage@example.com}
    due_in_days: 30
`

// TestRulesApplyPlansExportsAndReappliesNothing drives `steward rules`
// against a real server: the plan counts what each rule would assign, only
// --yes applies it, and applying the export plans nothing.
func TestRulesApplyPlansExportsAndReappliesNothing(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	token := authtest.Token(t, srv.DB, "secadmin", steward.RoleSecurityAdmin)
	c, err := apiclient.New(srv.URL(), token)
	require.NoError(t, err)
	_, err = c.PostAssessments(t.Context(), strings.NewReader(`{"assessments":[
		{"resource":{"id":"/subscriptions/sub-01/resourceGroups/app/vm1","cloud":"azure","tags":{"owner":"app@example.com"}},"recommendation":{"key":"rec-high","display_name":"High","severity":"High"},"status":"Unhealthy"},
		{"resource":{"id":"/subscriptions/sub-01/resourceGroups/sandbox/vm2","cloud":"azure"},"recommendation":{"key":"rec-high","display_name":"High","severity":"High"},"status":"Unhealthy"},
		{"resource":{"id":"/subscriptions/sub-01/resourceGroups/app/vm1","cloud":"azure"},"recommendation":{"key":"rec-low","display_name":"Low","severity":"Low"},"status":"Unhealthy"},
		{"resource":{"id":"/subscriptions/sub-02/vm3","cloud":"azure"},"recommendation":{"key":"rec-low","display_name":"Low","severity":"Low"},"status":"Unhealthy"},
		{"resource":{"id":"/subscriptions/sub-02/vm3","cloud":"azure"},"recommendation":{"key":"rec-high","display_name":"High","severity":"High"},"status":"Healthy"}]}`))
	require.NoError(t, err)

	dir := t.TempDir()
	file := filepath.Join(dir, "rules.yaml")
	require.NoError(t, os.WriteFile(file, []byte(rulesFile), 0o600))
	run := func(args ...string) (string, error) {
		var stdout, stderr bytes.Buffer
		cmd := newRootCommand(&stdout, &stderr)
		cmd.SetArgs(append([]string{"--server", srv.URL(), "--token", token}, args...))
		err := cmd.ExecuteContext(t.Context())
		return stdout.String(), err
	}

	out, err := run("rules", "apply", "-f", file, "--dry-run")
	require.NoError(t, err)
	// vm1's High and Low go to high-to-platform (the Low by the second
	// condition set); sandbox is excluded and falls to nothing (High is not
	// everything-else's); vm3's Low goes to everything-else.
	require.Equal(t, "Plan: 2 to create, 0 to change, 0 to delete, 0 unchanged.\n"+
		"  + high-to-platform: would assign 2 unassigned unhealthy assessment(s) and open 0 ticket(s)\n"+
		"  + everything-else: would assign 1 unassigned unhealthy assessment(s) and open 0 ticket(s)\n", out)

	out, err = run("rules", "apply", "-f", file)
	require.NoError(t, err)
	require.Contains(t, out, "Not applied: run again with --yes")
	list, err := c.ListRules(t.Context())
	require.NoError(t, err)
	require.Empty(t, list.Items, "nothing applied without --yes")

	out, err = run("rules", "apply", "-f", file, "--yes")
	require.NoError(t, err)
	require.Contains(t, out, "Applied: 2 created, 0 changed, 0 deleted.")

	exported, err := run("rules", "export")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(file, []byte(exported), 0o600))
	out, err = run("rules", "apply", "-f", file, "--dry-run")
	require.NoError(t, err)
	require.Equal(t, "No changes: the rules are as described (2 unchanged).\n", out)

	out, err = run("rules", "show", "high-to-platform")
	require.NoError(t, err)
	require.Contains(t, out, "fallback: secops@example.com")

	// A change and a deletion in one plan.
	changed := strings.Replace(exported, "due_in_days: 30", "due_in_days: 7", 1)
	changed = changed[:strings.Index(changed, "  - name: everything-else")]
	changed = strings.Replace(changed, "due_in_days: 14", "due_in_days: 7", 1)
	require.NoError(t, os.WriteFile(file, []byte(changed), 0o600))
	out, err = run("rules", "apply", "-f", file, "--yes")
	require.NoError(t, err)
	require.Contains(t, out, "  ~ high-to-platform (due_in_days): would assign 2")
	require.Contains(t, out, "  - everything-else (what it assigned stays)")
	r, err := c.GetRule(t.Context(), "high-to-platform")
	require.NoError(t, err)
	require.Equal(t, 7, r.DueInDays)

	out, err = run("rules", "delete", "high-to-platform")
	require.NoError(t, err)
	require.Contains(t, out, "Deleted rule")
	audit, err := c.ListAudit(t.Context(), nil)
	require.NoError(t, err)
	var actions []string
	for _, e := range audit.Items {
		if strings.HasPrefix(e.Action, "rule.") {
			actions = append(actions, e.Action+" "+e.Details["name"].(string)+" by "+e.Actor)
		}
	}
	require.Equal(t, []string{"rule.deleted high-to-platform by secadmin", "rule.updated high-to-platform by secadmin",
		"rule.deleted everything-else by secadmin", "rule.created everything-else by secadmin", "rule.created high-to-platform by secadmin"}, actions)
}

// TestRulesRefusedNamingTheField: every invalid rule is refused, and the
// message names what to fix.
func TestRulesRefusedNamingTheField(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	token := authtest.Token(t, srv.DB, "secadmin", steward.RoleSecurityAdmin)
	dir := t.TempDir()
	run := func(yaml string) error {
		file := filepath.Join(dir, "r.yaml")
		require.NoError(t, os.WriteFile(file, []byte(yaml), 0o600))
		var stdout, stderr bytes.Buffer
		cmd := newRootCommand(&stdout, &stderr)
		cmd.SetArgs([]string{"--server", srv.URL(), "--token", token, "rules", "apply", "-f", file, "--yes"})
		return cmd.ExecuteContext(t.Context())
	}
	base := "rules:\n  - {name: a, priority: 10, scope: /subscriptions/s1, when: [{severity: [High]}], owner: {email: a@example.com}, due_in_days: 7}\n"
	require.NoError(t, run(base))
	for want, yaml := range map[string]string{
		`rules[1] "b": priority 10: rule "b" (scope /subscriptions/s1/resourcegroups/g) and enabled rule "a" (scope /subscriptions/s1) have the same priority on overlapping scopes`: base +
			"  - {name: b, priority: 10, scope: /subscriptions/s1/resourceGroups/g, when: [{severity: [High]}], owner: {email: a@example.com}, due_in_days: 7}\n",
		`ticket.integration "prod": no integration has that name`: base +
			"  - {name: b, priority: 20, scope: /, when: [{severity: [Low]}], owner: {email: a@example.com}, due_in_days: 7, ticket: {integration: prod, type: incident}}\n",
		`rules[0] "a": when is empty`:                                                          "rules:\n  - {name: a, priority: 10, scope: /, when: [], owner: {email: a@example.com}, due_in_days: 7}\n",
		`rules[0] "a": when[0] has no condition`:                                               "rules:\n  - {name: a, priority: 10, scope: /, when: [{}], owner: {email: a@example.com}, due_in_days: 7}\n",
		`rules[0] "a": due_in_days 0 is outside 1–3650`:                                        "rules:\n  - {name: a, priority: 10, scope: /, when: [{severity: [High]}], owner: {email: a@example.com}}\n",
		`rules[0] "a": when[0].severity[0] "Urgent" is not one of Low, Medium, High, Critical`: "rules:\n  - {name: a, priority: 10, scope: /, when: [{severity: [Urgent]}], owner: {email: a@example.com}, due_in_days: 7}\n",
		`rules[0] "a": owner needs an email or a tag`:                                          "rules:\n  - {name: a, priority: 10, scope: /, when: [{severity: [High]}], due_in_days: 7}\n",
	} {
		err := run(yaml)
		require.Error(t, err, want)
		require.Contains(t, userMessage(err), strings.TrimPrefix(want, `rules[1] "b": `), want)
	}
	// The clash is also refused against stored rules, through the API.
	c, err := apiclient.New(srv.URL(), token)
	require.NoError(t, err)
	_, err = c.PlanRules(t.Context(), map[string]any{"rules": []any{map[string]any{"name": "c", "priority": 10, "scope": "/subscriptions/s1/x",
		"when": []any{map[string]any{"severity": []string{"Low"}}}, "owner": map[string]any{"email": "c@example.com"}, "due_in_days": 3}}}, true, true)
	require.ErrorContains(t, err, `rule "c" (scope /subscriptions/s1/x) and enabled rule "a" (scope /subscriptions/s1)`)
}

// TestRulesImportDefenderExamples imports the real Defender examples,
// applies them, and exports them back to equal Defender JSON.
func TestRulesImportDefenderExamples(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	token := authtest.Token(t, srv.DB, "secadmin", steward.RoleSecurityAdmin)
	run := func(args ...string) (string, error) {
		var stdout, stderr bytes.Buffer
		cmd := newRootCommand(&stdout, &stderr)
		cmd.SetArgs(append([]string{"--server", srv.URL(), "--token", token}, args...))
		err := cmd.ExecuteContext(t.Context())
		return stdout.String(), err
	}
	raw, err := os.ReadFile(filepath.Join("..", "..", "testdata", "defender", "ListBySubscriptionGovernanceRules_example.json"))
	require.NoError(t, err)
	var ex struct {
		Responses map[string]struct {
			Body json.RawMessage `json:"body"`
		} `json:"responses"`
	}
	require.NoError(t, json.Unmarshal(raw, &ex))
	file := filepath.Join(t.TempDir(), "defender.json")
	require.NoError(t, os.WriteFile(file, ex.Responses["200"].Body, 0o600))

	out, err := run("rules", "import", "--defender", file, "--yes")
	require.NoError(t, err)
	require.Contains(t, out, "Plan: 2 to create")
	require.Contains(t, out, "Applied: 2 created")

	exported, err := run("rules", "export", "--defender")
	require.NoError(t, err)
	var got struct {
		Value []struct {
			Properties map[string]any `json:"properties"`
		} `json:"value"`
	}
	require.NoError(t, json.Unmarshal([]byte(exported), &got))
	var orig struct {
		Value []struct {
			Properties map[string]any `json:"properties"`
		} `json:"value"`
	}
	require.NoError(t, json.Unmarshal(ex.Responses["200"].Body, &orig))
	require.Len(t, got.Value, 2)
	for _, key := range []string{"rulePriority", "remediationTimeframe", "isGracePeriod", "isDisabled", "ruleType", "ownerSource", "governanceEmailNotification", "excludedScopes", "description"} {
		require.Equal(t, orig.Value[0].Properties[key], got.Value[0].Properties[key], key)
		require.Equal(t, orig.Value[1].Properties[key], got.Value[1].Properties[key], key)
	}

	file2 := filepath.Join(t.TempDir(), "again.json")
	require.NoError(t, os.WriteFile(file2, []byte(exported), 0o600))
	out, err = run("rules", "import", "--defender", file2, "--dry-run")
	require.NoError(t, err)
	require.Equal(t, "No changes: the rules are as described (2 unchanged).\n", out)
}

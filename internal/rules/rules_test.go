package rules_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/rules"
)

const vm = "/subscriptions/sub-01/resourceGroups/payments/providers/Microsoft.Compute/virtualMachines/vm1"

func target(resourceID string, sev steward.Severity, tags map[string]string) rules.Target {
	return rules.Target{
		Assessment:     &steward.Assessment{RecommendationKey: "rec-1", ResourceID: resourceID, Severity: sev, Status: steward.StatusUnhealthy},
		Resource:       &steward.Resource{ID: resourceID, Cloud: steward.CloudAzure, Tags: tags},
		Recommendation: &steward.Recommendation{Key: "rec-1", Severity: sev, Source: "defender"},
	}
}

func rule(name string, prio int, scope steward.Scope, when ...steward.ConditionSet) *steward.Rule {
	return &steward.Rule{Name: name, Priority: prio, Scope: scope, Enabled: true, When: when,
		Owner: steward.OwnerSource{Tag: "owner", Fallback: "secops@example.com"}, DueInDays: 14}
}

var high = steward.ConditionSet{Severity: []steward.Severity{steward.SeverityHigh, steward.SeverityCritical}}

func TestOwnerLooksUpTheScopeChain(t *testing.T) {
	t.Parallel()
	r := rule("r", 1, "/", high)
	scopeTags := map[steward.Scope]map[string]string{
		"/subscriptions/sub-01/resourcegroups/payments": {"owner": "group@example.com"},
		"/subscriptions/sub-01":                         {"Owner": "sub@example.com"},
	}
	lookup := func(s steward.Scope) map[string]string { return scopeTags[s] }

	res := &steward.Resource{ID: vm, Tags: map[string]string{"owner": "vm@example.com"}}
	require.Equal(t, "vm@example.com", rules.Owner(r, res, lookup), "tag on the resource")
	res.Tags = map[string]string{"owner": "not an address"}
	require.Equal(t, "group@example.com", rules.Owner(r, res, lookup), "tag on its resource group")
	delete(scopeTags, "/subscriptions/sub-01/resourcegroups/payments")
	require.Equal(t, "sub@example.com", rules.Owner(r, res, lookup), "tag on its subscription, key in another case")
	delete(scopeTags, "/subscriptions/sub-01")
	require.Equal(t, "secops@example.com", rules.Owner(r, res, lookup), "missing: the fallback")

	fixed := rule("f", 1, "/", high)
	fixed.Owner = steward.OwnerSource{Email: "fixed@example.com"}
	require.Equal(t, "fixed@example.com", rules.Owner(fixed, res, lookup))

	require.Equal(t, []steward.Scope{"/aws/accounts/111"}, rules.ScopeChain("/aws/accounts/111/regions/eu-west-1/s3/b"))
	require.Equal(t, []steward.Scope{"/gcp/projects/p1"}, rules.ScopeChain("/gcp/projects/p1/zones/z/instances/i"))
}

func TestWinnerPriorityAndExclusions(t *testing.T) {
	t.Parallel()
	sub := rule("subscription-wide", 20, "/subscriptions/sub-01", high)
	group := rule("payments-group", 10, "/subscriptions/sub-01/resourceGroups/payments", high)
	all := []*steward.Rule{sub, group}

	w, why := rules.Winner(all, target(vm, steward.SeverityHigh, nil))
	require.Equal(t, "payments-group", w.Name, "the lower priority number wins between overlapping scopes")
	require.Equal(t, "when[0]: severity High|Critical", why)

	group.Exclude = []steward.Scope{"/subscriptions/sub-01/resourceGroups/payments/providers/Microsoft.Compute"}
	w, _ = rules.Winner(all, target(vm, steward.SeverityHigh, nil))
	require.Equal(t, "subscription-wide", w.Name, "an excluded scope falls to the next rule")

	sub.Exclude = []steward.Scope{"/subscriptions/SUB-01/resourceGroups/payments"}
	w, _ = rules.Winner(all, target(vm, steward.SeverityHigh, nil))
	require.Nil(t, w, "excluded everywhere")

	w, _ = rules.Winner(all, target("/subscriptions/sub-01/resourceGroups/other/x", steward.SeverityLow, nil))
	require.Nil(t, w, "no condition set holds")

	tagged := rule("prod", 5, "/", steward.ConditionSet{Cloud: []steward.Cloud{steward.CloudAzure}, Tags: map[string][]string{"env": {"prod"}}})
	ok, why := rules.Match(tagged, target(vm, steward.SeverityLow, map[string]string{"Env": "PROD"}))
	require.True(t, ok)
	require.Equal(t, "when[0]: cloud azure, tag env prod", why)
	tagged.Enabled = false
	w, _ = rules.Winner([]*steward.Rule{tagged}, target(vm, steward.SeverityLow, map[string]string{"env": "prod"}))
	require.Nil(t, w, "a disabled rule assigns nothing")
}

func TestValidateNamesTheField(t *testing.T) {
	t.Parallel()
	for want, mutate := range map[string]func(r *steward.Rule){
		"when is empty":                 func(r *steward.Rule) { r.When = nil },
		"when[0] has no condition":      func(r *steward.Rule) { r.When = []steward.ConditionSet{{}} },
		`when[0].severity[0] "Urgent"`:  func(r *steward.Rule) { r.When[0].Severity = []steward.Severity{"Urgent"} },
		"due_in_days 0":                 func(r *steward.Rule) { r.DueInDays = 0 },
		"priority 1001":                 func(r *steward.Rule) { r.Priority = 1001 },
		"owner needs an email or a tag": func(r *steward.Rule) { r.Owner = steward.OwnerSource{} },
		"exclude[0]":                    func(r *steward.Rule) { r.Exclude = []steward.Scope{"/subscriptions/other"} },
		"scope is missing":              func(r *steward.Rule) { r.Scope = "" },
		`ticket.type "memo"`:            func(r *steward.Rule) { r.Ticket = &steward.RuleTicket{Integration: "prod", Type: "memo"} },
		"ticket.integration is missing": func(r *steward.Rule) { r.Ticket = &steward.RuleTicket{GroupBy: "recommendation"} },
		`ticket.group_by "owner"`: func(r *steward.Rule) {
			r.Ticket = &steward.RuleTicket{Integration: "prod", Type: "incident", GroupBy: "owner"}
		},
		"ticket.daily_cap -1": func(r *steward.Rule) {
			r.Ticket = &steward.RuleTicket{Integration: "prod", Type: "incident", DailyCap: -1}
		},
	} {
		r := rule("r", 1, "/subscriptions/sub-01", high)
		r.When = []steward.ConditionSet{{Severity: []steward.Severity{"High"}}}
		mutate(r)
		err := r.Validate()
		require.Error(t, err, want)
		require.Contains(t, steward.ErrorMessage(err), want)
	}
}

// exampleBody is the response body of one of the real Defender examples.
func exampleBody(t *testing.T, file, status string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "testdata", "defender", file))
	require.NoError(t, err)
	var ex struct {
		Responses map[string]struct {
			Body json.RawMessage `json:"body"`
		} `json:"responses"`
	}
	require.NoError(t, json.Unmarshal(raw, &ex))
	return ex.Responses[status].Body
}

func TestDefenderExamplesRoundTrip(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		file  string
		names []string
	}{
		{"GetGovernanceRule_example.json", []string{"Admin's rule"}},
		{"PutGovernanceRule_example.json", []string{"Admin's rule"}},
		{"ListBySubscriptionGovernanceRules_example.json", []string{"Admin's rule (ad9a8e26)", "Admin's rule (4106f43c)"}},
	} {
		doc, err := rules.ImportDefender(exampleBody(t, c.file, "200"), rules.DefenderOptions{})
		require.NoError(t, err, c.file)
		got, err := doc.Desired()
		require.NoError(t, err, c.file)
		var names []string
		for _, r := range got {
			names = append(names, r.Name)
			require.Equal(t, steward.Scope("/subscriptions/20ff7fc3-e762-44dd-bd96-b71116dcdc23"), r.Scope)
			require.Equal(t, 7, r.DueInDays)
			require.True(t, r.GracePeriod)
			require.True(t, r.Enabled)
			require.Equal(t, "user@contoso.com", r.Owner.Email)
			require.Nil(t, r.Ticket, "ruleType Integrated makes manual assignments")
		}
		require.Equal(t, c.names, names, c.file)

		out, err := rules.ExportDefender(got)
		require.NoError(t, err)
		again, err := rules.ImportDefender(out, rules.DefenderOptions{})
		require.NoError(t, err)
		back, err := again.Desired()
		require.NoError(t, err)
		require.Equal(t, got, back, "%s round-trips", c.file)
	}
	doc, err := rules.ImportDefender(exampleBody(t, "ListBySubscriptionGovernanceRules_example.json", "200"), rules.DefenderOptions{})
	require.NoError(t, err)
	got, err := doc.Desired()
	require.NoError(t, err)
	require.Equal(t, []string{"b1cd27e0-4ecc-4246-939f-49c426d9d72f", "fe83f80b-073d-4ccf-93d9-6797eb870201"}, got[0].When[0].Recommendation)
	require.Equal(t, []steward.Severity{steward.SeverityLow}, got[1].When[0].Severity)
	require.True(t, got[1].OwnerEmailOptOut)
	require.True(t, got[1].ManagerEmailOptOut)
}

func TestDefenderImportRefusals(t *testing.T) {
	t.Parallel()
	body := exampleBody(t, "GetGovernanceRule_example.json", "200")
	var m map[string]any
	require.NoError(t, json.Unmarshal(body, &m))
	props := m["properties"].(map[string]any)

	props["remediationTimeframe"] = "7 days"
	b, _ := json.Marshal(m)
	_, err := rules.ImportDefender(b, rules.DefenderOptions{})
	require.ErrorContains(t, err, `remediationTimeframe "7 days" is not whole days like 7.00:00:00`)

	props["remediationTimeframe"] = "14.00:00:00"
	props["ruleType"] = "ServiceNow"
	b, _ = json.Marshal(m)
	_, err = rules.ImportDefender(b, rules.DefenderOptions{})
	require.ErrorContains(t, err, "ruleType ServiceNow needs the integration")
	doc, err := rules.ImportDefender(b, rules.DefenderOptions{Integration: "prod"})
	require.NoError(t, err)
	got, err := doc.Desired()
	require.NoError(t, err)
	require.Equal(t, &steward.RuleTicket{Integration: "prod", Type: steward.TicketTypeIncident}, got[0].Ticket)
	require.Equal(t, 14, got[0].DueInDays)
}

func TestYAMLRoundTrip(t *testing.T) {
	t.Parallel()
	src := []byte(`rules:
  - name: high-to-platform
    priority: 10
    scope: /subscriptions/sub-01
    exclude: [/subscriptions/sub-01/resourceGroups/sandbox]
    when:
      - {severity: [high, Critical]}
      - {recommendation: [rec-1], cloud: [Azure]}
    owner: {tag: owner, fallback: secops@example.com}
    due_in_days: 14
    grace_period: true
    ticket: {integration: prod, type: incident, group_by: recommendation, daily_cap: 200}
`)
	doc, err := rules.ParseYAML(src)
	require.NoError(t, err)
	want, err := doc.Desired()
	require.NoError(t, err)
	require.Equal(t, steward.Scope("/subscriptions/sub-01/resourcegroups/sandbox"), want[0].Exclude[0])
	require.Equal(t, []steward.Severity{"High", "Critical"}, want[0].When[0].Severity)
	out, err := rules.ExportYAML(want)
	require.NoError(t, err)
	doc, err = rules.ParseYAML(out)
	require.NoError(t, err)
	got, err := doc.Desired()
	require.NoError(t, err)
	require.Equal(t, want, got)

	_, err = rules.ParseYAML([]byte("rules:\n  - name: x\n    colour: red\n"))
	require.ErrorContains(t, err, "field colour not found")
	_, err = rules.ParseYAML([]byte("{}"))
	require.ErrorContains(t, err, "rules is missing")
}

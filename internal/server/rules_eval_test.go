package server_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/apiclient"
	"github.com/stewardhq/steward/internal/snowemu"
	"github.com/stewardhq/steward/internal/store"
)

func tagged(r map[string]any, tags map[string]string) map[string]any {
	r["resource"].(map[string]any)["tags"] = tags
	return r
}

// assignmentsByResource lists assignments (active only unless all) by
// resource ID.
func (b *testBundle) assignmentsByResource(t *testing.T, all bool) map[string][]*steward.Assignment {
	t.Helper()
	f := store.AssignmentFilter{Limit: 500}
	if all {
		f.States = []steward.AssignmentState{steward.AssignmentActive, steward.AssignmentCompleted, steward.AssignmentRemoved}
	}
	page, _, err := b.srv.DB.FindAssignments(t.Context(), f)
	require.NoError(t, err)
	out := map[string][]*steward.Assignment{}
	for _, a := range page {
		out[a.ResourceID] = append(out[a.ResourceID], a)
	}
	return out
}

func (b *testBundle) applyRules(t *testing.T, rules ...map[string]any) {
	t.Helper()
	_, err := b.client.PlanRules(t.Context(), map[string]any{"rules": rules}, false, true)
	require.NoError(t, err)
}

const (
	rg      = "/subscriptions/s1/resourceGroups/rg/providers/vm"
	sandbox = "/subscriptions/s1/resourceGroups/sandbox/providers/vm"
)

// TestRulesAssignOnArrival: an import that turns findings Unhealthy gives
// them their winning rule's assignment before it answers (the batch's own
// transaction), with the rule and condition recorded, the owner from the
// resource's tag, its subscription's tag or the fallback; the higher
// priority wins where scopes overlap, excluded scopes get nothing, a rule
// without an owner skips (counted in the answer), and an assignment a
// person made is left alone.
func TestRulesAssignOnArrival(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()

	// Before any rule: a finding a person assigns, later NotApplicable.
	_, err := b.client.PostAssessments(ctx, bytes.NewReader(batch(row("rec-high", "High", rg+"9", "Unhealthy"))))
	require.NoError(t, err)
	asm, err := b.client.ListAssessments(ctx, nil)
	require.NoError(t, err)
	manual, err := b.client.CreateAssignment(ctx, apiclient.AssignmentRequest{AssessmentID: asm.Items[0].ID,
		Owner: "person@example.com", RemediationTimeframeDays: 7})
	require.NoError(t, err)
	_, err = b.client.PostAssessments(ctx, bytes.NewReader(batch(row("rec-high", "High", rg+"9", "NotApplicable"))))
	require.NoError(t, err)

	b.applyRules(t,
		map[string]any{"name": "s1-high", "priority": 10, "scope": "/subscriptions/s1",
			"exclude": []string{"/subscriptions/s1/resourceGroups/sandbox"},
			"when":    []map[string]any{{"severity": []string{"High"}}},
			"owner":   map[string]any{"tag": "owner", "fallback": "fallback@example.com"}, "due_in_days": 14, "grace_period": true},
		map[string]any{"name": "rg-broad", "priority": 20, "scope": "/subscriptions/s1/resourceGroups/rg",
			"when":  []map[string]any{{"severity": []string{"High", "Low"}}},
			"owner": map[string]any{"email": "broad@example.com"}, "due_in_days": 30},
		map[string]any{"name": "s2-tag", "priority": 10, "scope": "/subscriptions/s2",
			"when":  []map[string]any{{"severity": []string{"High"}}},
			"owner": map[string]any{"tag": "owner", "fallback": "s2-fallback@example.com"}, "due_in_days": 7},
		map[string]any{"name": "s3-no-owner", "priority": 10, "scope": "/subscriptions/s3",
			"when":  []map[string]any{{"severity": []string{"High"}}},
			"owner": map[string]any{"tag": "owner"}, "due_in_days": 7},
	)
	_, err = b.client.SetScopeTags(ctx, "/subscriptions/s1", map[string]string{"owner": "sub-owner@example.com"})
	require.NoError(t, err)

	res, err := b.client.PostAssessments(ctx, bytes.NewReader(batch(
		tagged(row("rec-high", "High", rg+"1", "Unhealthy"), map[string]string{"Owner": "res-owner@example.com"}),
		row("rec-high", "High", rg+"2", "Unhealthy"),
		row("rec-low", "Low", rg+"2", "Unhealthy"),
		row("rec-high", "High", sandbox+"3", "Unhealthy"),
		row("rec-high", "High", "/subscriptions/s2/resourceGroups/x/providers/vm4", "Unhealthy"),
		row("rec-high", "High", "/subscriptions/s3/resourceGroups/x/providers/vm5", "Unhealthy"),
		row("rec-high", "High", rg+"6", "Healthy"),
		row("rec-high", "High", rg+"9", "Unhealthy"), // back from NotApplicable: still the person's
	)))
	require.NoError(t, err)
	require.Equal(t, 4, res.RuleAssignments)
	require.Equal(t, map[string]int{"no_owner": 1}, res.RuleSkipped)

	got := b.assignmentsByResource(t, false)
	want := map[string]struct{ owner, rule, cond string }{
		rg + "1": {"res-owner@example.com", "s1-high", "when[0]: severity High"},
		rg + "2": {"sub-owner@example.com", "s1-high", "when[0]: severity High"},
		"/subscriptions/s2/resourceGroups/x/providers/vm4": {"s2-fallback@example.com", "s2-tag", "when[0]: severity High"},
	}
	ids := map[string]int64{}
	for _, name := range []string{"s1-high", "rg-broad", "s2-tag"} {
		r, err := b.client.GetRule(ctx, name)
		require.NoError(t, err)
		ids[name] = r.ID
	}
	for res, w := range want {
		var found *steward.Assignment
		for _, a := range got[res] {
			if a.RecommendationKey == "rec-high" {
				found = a
			}
		}
		require.NotNil(t, found, res)
		require.Equal(t, w.owner, found.Owner, res)
		require.Equal(t, ids[w.rule], found.RuleID, res)
		require.Equal(t, w.cond, found.RuleCondition, res)
		require.Equal(t, steward.AssignmentManual, found.Type, res)
	}
	high1 := got[rg+"1"][0]
	require.True(t, high1.GracePeriod)
	require.Equal(t, steward.DueDate(time.Now(), 14).Format(time.DateOnly), high1.DueDate.Format(time.DateOnly))
	var low *steward.Assignment
	for _, a := range got[rg+"2"] {
		if a.RecommendationKey == "rec-low" {
			low = a
		}
	}
	require.NotNil(t, low, "the Low finding goes to the lower-priority rule whose condition it matches")
	require.Equal(t, "broad@example.com", low.Owner)
	require.Equal(t, ids["rg-broad"], low.RuleID)
	require.Empty(t, got[sandbox+"3"], "excluded scope")
	require.Empty(t, got["/subscriptions/s3/resourceGroups/x/providers/vm5"], "no owner found")
	require.Empty(t, got[rg+"6"], "healthy")
	require.Len(t, got[rg+"9"], 1)
	require.Equal(t, manual.ID, got[rg+"9"][0].ID, "the person's assignment stays, no second one")
	require.Zero(t, got[rg+"9"][0].RuleID)

	// A file import applies rules in its chunks too, and says so.
	body := batch(row("rec-file", "High", rg+"7", "Unhealthy"))
	imp, err := b.client.UploadImport(ctx, bytes.NewReader(body), int64(len(body)), "f.json", "")
	require.NoError(t, err)
	imp = b.waitImport(t, imp.ID)
	require.Equal(t, "succeeded", imp.State, imp.Error)
	require.Equal(t, 1, imp.Result.RuleAssignments)
	require.Equal(t, "sub-owner@example.com", b.assignmentsByResource(t, false)[rg+"7"][0].Owner)

	// Disabling and deleting rules keeps what they made.
	b.applyRules(t, map[string]any{"name": "s1-high", "priority": 10, "scope": "/subscriptions/s1", "enabled": false,
		"when":  []map[string]any{{"severity": []string{"High"}}},
		"owner": map[string]any{"tag": "owner", "fallback": "fallback@example.com"}, "due_in_days": 14})
	after := b.assignmentsByResource(t, false)
	require.Len(t, after[rg+"1"], 1)
	require.Equal(t, high1.ID, after[rg+"1"][0].ID)
	require.Len(t, after["/subscriptions/s2/resourceGroups/x/providers/vm4"], 1, "rule s2-tag deleted, its assignment stays")
}

// TestRulesOpenTicketsOnArrival: a ServiceNow-type rule makes ServiceNow
// assignments that open exactly one emulator incident each, assigned to the
// owner; a re-import of the same findings opens nothing more.
func TestRulesOpenTicketsOnArrival(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	emu := snowemu.New(snowemu.Options{AdminPassword: "emu-pw"}, slog.New(slog.DiscardHandler))
	t.Cleanup(func() { _ = emu.Close() })
	hs := httptest.NewServer(emu)
	t.Cleanup(hs.Close)
	_, err := b.client.CreateIntegration(ctx, apiclient.IntegrationRequest{
		Name: ptrTo("emulator"), Scope: ptrTo("/subscriptions/s1"), InstanceURL: ptrTo(hs.URL), Local: ptrTo(true),
		AuthMode: ptrTo("basic"), Username: ptrTo("admin"), Password: ptrTo("emu-pw"),
	})
	require.NoError(t, err)
	b.applyRules(t, map[string]any{"name": "snow", "priority": 1, "scope": "/subscriptions/s1",
		"when":  []map[string]any{{"severity": []string{"High"}}},
		"owner": map[string]any{"email": "beth.anglin@example.com"}, "due_in_days": 14,
		"ticket": map[string]any{"integration": "emulator", "type": "incident"}})

	findings := batch(row("rec-a", "High", rg+"1", "Unhealthy"), row("rec-a", "High", rg+"2", "Unhealthy"),
		row("rec-b", "High", rg+"1", "Unhealthy"))
	res, err := b.client.PostAssessments(ctx, bytes.NewReader(findings))
	require.NoError(t, err)
	require.Equal(t, 3, res.RuleAssignments)
	require.Eventually(t, func() bool { return emu.Count("incident") == 3 }, 20*time.Second, 50*time.Millisecond)
	_, err = b.client.PostAssessments(ctx, bytes.NewReader(findings))
	require.NoError(t, err)
	time.Sleep(time.Second)
	require.Equal(t, 3, emu.Count("incident"), "exactly one ticket per assignment")
	for _, rec := range emu.Records("incident") {
		require.True(t, strings.HasPrefix(fmt.Sprint(rec["correlation_id"]), "steward-"), "%v", rec)
	}
	for _, as := range b.assignmentsByResource(t, false) {
		for _, a := range as {
			require.Equal(t, steward.AssignmentServiceNow, a.Type)
			require.Equal(t, "beth.anglin@example.com", a.Owner)
			require.NotZero(t, a.RuleID)
		}
	}
}

// TestRulesRun: running a rule assigns the Unhealthy findings that existed
// before it; a dry run counts without writing; --override replaces what
// rules made and never what a person made.
func TestRulesRun(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	_, err := b.client.PostAssessments(ctx, bytes.NewReader(batch(
		row("rec-a", "High", rg+"1", "Unhealthy"), row("rec-a", "High", rg+"2", "Unhealthy"),
		row("rec-a", "High", rg+"3", "Unhealthy"), row("rec-a", "High", rg+"4", "Healthy"),
	)))
	require.NoError(t, err)
	asm, err := b.client.ListAssessments(ctx, nil)
	require.NoError(t, err)
	byRes := map[string]int64{}
	for _, a := range asm.Items {
		byRes[a.ResourceID] = a.ID
	}
	manual, err := b.client.CreateAssignment(ctx, apiclient.AssignmentRequest{AssessmentID: byRes[rg+"3"],
		Owner: "person@example.com", RemediationTimeframeDays: 7})
	require.NoError(t, err)
	b.applyRules(t, map[string]any{"name": "first", "priority": 10, "scope": "/subscriptions/s1",
		"when":  []map[string]any{{"severity": []string{"High"}}},
		"owner": map[string]any{"email": "first@example.com"}, "due_in_days": 14})

	dry, err := b.client.RunRule(ctx, "first", false, true)
	require.NoError(t, err)
	require.True(t, dry.DryRun)
	require.Equal(t, 2, dry.Assigned)
	require.Equal(t, map[string]int{"already_assigned": 1}, dry.Skipped)
	require.Len(t, b.assignmentsByResource(t, false), 1, "a dry run writes nothing")

	run := b.runRule(t, "first", false)
	require.Equal(t, "succeeded", run.State, run.Error)
	require.Equal(t, 3, run.Scanned)
	require.Equal(t, 2, run.Assigned)
	got := b.assignmentsByResource(t, false)
	require.Equal(t, "first@example.com", got[rg+"1"][0].Owner)
	require.Equal(t, "first@example.com", got[rg+"2"][0].Owner)
	require.Equal(t, manual.ID, got[rg+"3"][0].ID)

	// A second rule with priority takes over with override: what the
	// first rule made is replaced, the person's assignment stays.
	b.applyRules(t,
		map[string]any{"name": "first", "priority": 10, "scope": "/subscriptions/s1",
			"when":  []map[string]any{{"severity": []string{"High"}}},
			"owner": map[string]any{"email": "first@example.com"}, "due_in_days": 14},
		map[string]any{"name": "second", "priority": 5, "scope": "/subscriptions/s1/resourceGroups/rg",
			"when":  []map[string]any{{"severity": []string{"High"}}},
			"owner": map[string]any{"email": "second@example.com"}, "due_in_days": 30})
	dry, err = b.client.RunRule(ctx, "second", true, true)
	require.NoError(t, err)
	require.Equal(t, 2, dry.Replaced)
	run = b.runRule(t, "second", true)
	require.Equal(t, "succeeded", run.State, run.Error)
	require.Equal(t, 2, run.Assigned)
	require.Equal(t, 2, run.Replaced)
	require.Equal(t, map[string]int{"manual_assignment": 1}, run.Skipped)
	all := b.assignmentsByResource(t, true)
	for _, res := range []string{rg + "1", rg + "2"} {
		require.Len(t, all[res], 2, res)
		for _, a := range all[res] {
			switch a.State {
			case steward.AssignmentRemoved:
				require.Equal(t, "first@example.com", a.Owner)
				require.Equal(t, "replaced by rule second", a.EndReason)
			case steward.AssignmentActive:
				require.Equal(t, "second@example.com", a.Owner)
			default:
				t.Fatalf("%s: unexpected state %s", res, a.State)
			}
		}
	}
	require.Len(t, all[rg+"3"], 1)
	require.Equal(t, steward.AssignmentActive, all[rg+"3"][0].State, "never a person's")

	// The run's own page shows the same.
	status, body := b.rawRequest(t, "GET", fmt.Sprintf("/api/v1/rules/%d/runs/%d", run.RuleID, run.ID), "", nil)
	require.Equal(t, 200, status, "%v", body)
	require.Equal(t, "succeeded", body["state"])
}

// runRule runs a rule and waits for the run to finish.
func (b *testBundle) runRule(t *testing.T, name string, override bool) *apiclient.RuleRun {
	t.Helper()
	run, err := b.client.RunRule(t.Context(), name, override, false)
	require.NoError(t, err)
	require.NotZero(t, run.ID)
	deadline := time.Now().Add(30 * time.Second)
	for run.State == "queued" || run.State == "running" {
		require.True(t, time.Now().Before(deadline), "run %d still %s", run.ID, run.State)
		time.Sleep(50 * time.Millisecond)
		run, err = b.client.GetRuleRun(t.Context(), run.RuleID, run.ID)
		require.NoError(t, err)
	}
	return run
}

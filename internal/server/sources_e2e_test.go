package server_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/apiclient"
	"github.com/stewardhq/steward/internal/source/asff"
)

// fakeSecurityHub answers GetFindings (POST /findings, REST-JSON) with the
// findings it holds, in one page. Tests change what it holds between runs.
type fakeSecurityHub struct {
	mu       sync.Mutex
	findings []json.RawMessage
	calls    int
}

func (f *fakeSecurityHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/findings" {
		http.NotFound(w, r)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"Findings": f.findings})
}

func (f *fakeSecurityHub) set(findings []json.RawMessage) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.findings = findings
}

// TestSecurityHubSourceEndToEnd: a securityhub source created through the
// API pulls the real ASFF sample (testdata/asff) from a local Security Hub
// through the built-in provider, the outbound policy (local: true) and the
// collector into the store; a finding Security Hub stops reporting turns
// Healthy on the next run and its assignment completes; the access keys
// are never answered.
func TestSecurityHubSourceEndToEnd(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	b, _ := startInbound(t, nil, &logs)
	ctx := t.Context()

	raw, err := os.ReadFile("../../testdata/asff/asff_sample.json")
	require.NoError(t, err)
	var doc struct{ Findings []json.RawMessage }
	require.NoError(t, json.Unmarshal(raw, &doc))
	require.Len(t, doc.Findings, 18)
	hub := &fakeSecurityHub{}
	hub.set(doc.Findings)
	hs := httptest.NewServer(hub)
	t.Cleanup(hs.Close)

	name, kind, scope, schedule := "aws-prod", steward.SourceSecurityHub, steward.Scope("/aws/accounts/123456789123"), "24h"
	settings, err := json.Marshal(map[string]any{"regions": []string{"us-east-1"}, "endpoint": hs.URL, "local": true})
	require.NoError(t, err)
	const secretKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	src, err := b.client.CreateSource(ctx, steward.SourceInput{Name: &name, Kind: &kind, Scope: &scope, Schedule: &schedule,
		Settings: settings, Secrets: map[string]string{"access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": secretKey}})
	require.NoError(t, err)
	require.True(t, src.Secrets["has_secret_access_key"], "the API says a secret is set: %v", src.Secrets)
	body, _ := json.Marshal(src)
	require.NotContains(t, string(body), secretKey)

	// The new source is due at once; wait for its first run to finish.
	waitRun := func(after int64) *steward.SourceRun {
		t.Helper()
		var last *steward.SourceRun
		require.Eventually(t, func() bool {
			runs, err := b.client.ListSourceRuns(ctx, name, 5)
			require.NoError(t, err)
			if len(runs.Items) == 0 || runs.Items[0].ID <= after {
				return false
			}
			last = &runs.Items[0]
			return last.State != steward.SourceRunQueued && last.State != steward.SourceRunRunning
		}, 60*time.Second, 100*time.Millisecond)
		return last
	}
	first := waitRun(0)
	require.Equal(t, steward.SourceRunDone, first.State, "run: %+v", first)
	require.Equal(t, 18, first.Observed)
	require.Zero(t, first.Errors)
	require.Len(t, first.Units, 1)
	require.True(t, first.Units[0].Done)

	unhealthy, err := b.client.ListAssessments(ctx, url.Values{"status": {"Unhealthy"}, "scope": {string(scope)}, "limit": {"500"}})
	require.NoError(t, err)
	require.NotEmpty(t, unhealthy.Items)
	target := unhealthy.Items[0]
	a, err := b.client.CreateAssignment(ctx, apiclient.AssignmentRequest{AssessmentID: target.ID, Owner: "cloud-team@example.com", RemediationTimeframeDays: 30})
	require.NoError(t, err)

	// Security Hub stops reporting that finding's check on that resource.
	var kept []json.RawMessage
	for _, f := range doc.Findings {
		if !findingIs(t, f, target) {
			kept = append(kept, f)
		}
	}
	require.Less(t, len(kept), len(doc.Findings), "the assessment maps back to a sample finding")
	hub.set(kept)
	_, err = b.client.RunSource(ctx, name)
	require.NoError(t, err)
	second := waitRun(first.ID)
	require.Equal(t, steward.SourceRunDone, second.State, "run: %+v", second)
	require.Equal(t, 1, second.Gone)

	got, err := b.client.GetAssessment(ctx, target.ID)
	require.NoError(t, err)
	require.Equal(t, steward.StatusHealthy, got.Status)
	require.Contains(t, got.StatusReason, "no longer reported by source aws-prod")
	detail, err := b.client.GetAssignment(ctx, a.ID)
	require.NoError(t, err)
	require.Equal(t, steward.AssignmentCompleted, detail.State)
	require.NotContains(t, logs.String(), secretKey)
}

// findingIs reports whether an ASFF finding is the one behind assessment a,
// mapped the way the provider maps it.
func findingIs(t *testing.T, finding json.RawMessage, a steward.Assessment) bool {
	t.Helper()
	var obs []steward.Observation
	require.NoError(t, asff.Parser{}.Parse(t.Context(), bytes.NewReader(finding), func(o steward.Observation) error {
		obs = append(obs, o)
		return nil
	}))
	require.Len(t, obs, 1)
	return obs[0].Recommendation.Key == a.RecommendationKey &&
		steward.NormalizeResourceID(obs[0].Resource.ID) == steward.NormalizeResourceID(a.ResourceID)
}

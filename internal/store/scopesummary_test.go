package store_test

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/rules"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
	"github.com/stretchr/testify/require"
)

func TestSummaryLevels(t *testing.T) {
	for _, tt := range []struct {
		id   string
		want []string
	}{
		{"/subscriptions/s1/resourcegroups/rg/providers/microsoft.compute/virtualmachines/vm",
			[]string{"/subscriptions", "/subscriptions/s1", "/subscriptions/s1/resourcegroups/rg"}},
		{"/subscriptions/s1/resourcegroups/rg", []string{"/subscriptions", "/subscriptions/s1", "/subscriptions/s1/resourcegroups/rg"}},
		{"/subscriptions/s1/resourcegroups", []string{"/subscriptions", "/subscriptions/s1"}},
		{"/subscriptions/s1/providers/microsoft.security/x", []string{"/subscriptions", "/subscriptions/s1"}},
		{"/subscriptions/s1", []string{"/subscriptions", "/subscriptions/s1"}},
		{"/subscriptions", []string{"/subscriptions"}},
		{"/subscriptions//s1/vm", []string{"/subscriptions"}},
		{"/subscriptionsx/s1", nil},
		{"/aws/accounts/111/regions/us-east-1/i-1", []string{"/aws", "/aws/accounts", "/aws/accounts/111"}},
		{"/aws/accountsx/111", []string{"/aws"}},
		{"/gcp/projects/p1/compute/vm", []string{"/gcp", "/gcp/projects", "/gcp/projects/p1"}},
		{"/gcp/organizations/42/x", []string{"/gcp", "/gcp/organizations", "/gcp/organizations/42"}},
		{"/gcp/folders/7/x", []string{"/gcp"}},
		{"/providers/microsoft.aad/x", nil},
		{"subscriptions/s1", nil},
		{"", nil},
	} {
		require.Equal(t, tt.want, store.SummaryLevels(tt.id), tt.id)
	}
	// Every level of the rules' scope chain (the scopes owners are looked
	// up by) is a summary level.
	for _, id := range []string{
		"/subscriptions/s1/resourceGroups/RG/providers/microsoft.compute/virtualmachines/vm",
		"/aws/accounts/111/regions/us-east-1/i-1",
		"/gcp/projects/p1/compute/vm",
	} {
		levels := store.SummaryLevels(steward.NormalizeResourceID(id))
		for _, s := range rules.ScopeChain(id) {
			require.Contains(t, levels, string(s), id)
		}
	}
}

// scopeEstate is the estate the scope summary tests list: Azure
// subscriptions with resource groups (one whose name is a prefix of
// another's), subscription-level resources, resources of other clouds held
// in an Azure subscription (Defender's multicloud connectors), AWS accounts,
// GCP projects and an organization, and IDs of no level.
func scopeEstate(round int) []steward.Observation {
	type res struct {
		id    string
		cloud steward.Cloud
	}
	ids := []res{
		{"/subscriptions/S1/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm1", steward.CloudAzure},
		{"/subscriptions/s1/resourcegroups/RG1/providers/Microsoft.Compute/virtualMachines/vm2", steward.CloudAzure},
		{"/subscriptions/s1/resourceGroups/rg10/providers/Microsoft.Web/sites/app", steward.CloudAzure},
		{"/subscriptions/s1/resourceGroups/rg1", steward.CloudAzure},
		{"/subscriptions/s1", steward.CloudAzure},
		{"/subscriptions/s1/providers/Microsoft.Security/securityConnectors/c/securityentitydata/aws-ec2-i-1", steward.CloudAWS},
		{"/subscriptions/s10/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm3", steward.CloudAzure},
		{"/subscriptions/s2/providers/Microsoft.Insights/components/ai", steward.CloudAzure},
		{"/subscriptions//s3/vm", steward.CloudAzure},
		{"/aws/accounts/111/regions/us-east-1/AWS::EC2::Instance/i-1", steward.CloudAWS},
		{"/aws/accounts/111/regions/eu-west-1/AWS::S3::Bucket/b", steward.CloudAWS},
		{"/aws/accounts/222/regions/us-east-1/AWS::EC2::Instance/i-2", steward.CloudAWS},
		{"/gcp/projects/web-prod/google.compute.Instance/vm-1", steward.CloudGCP},
		{"/gcp/organizations/42/google.cloud.Org/42", steward.CloudGCP},
		{"/providers/Microsoft.AAD/tenants/t", steward.CloudAzure},
	}
	if round > 0 {
		// New resources in existing and new levels.
		ids = append(ids,
			res{"/subscriptions/s1/resourceGroups/rg2/providers/Microsoft.Compute/virtualMachines/vm9", steward.CloudAzure},
			res{"/aws/accounts/333/regions/us-east-1/AWS::EC2::Instance/i-3", steward.CloudAWS})
	}
	statuses := []steward.AssessmentStatus{steward.StatusUnhealthy, steward.StatusHealthy, steward.StatusNotApplicable}
	var obs []steward.Observation
	recs := 9 + round // a recommendation added in round 1
	for r := range recs {
		for i, res := range ids {
			// Not every recommendation assesses every resource.
			if (r*7+i*3)%5 == 0 {
				continue
			}
			o := storetest.WithCloud(storetest.Observation(fmt.Sprintf("rec-%02d", r), res.id, statuses[(r*5+i*11+round*(i%3))%3]), res.cloud)
			sev := steward.Severities[r%4]
			if round > 0 && r == 2 {
				sev = steward.SeverityCritical // a severity that changes
			}
			o.Recommendation.Severity = sev
			o.Recommendation.Source = []string{"defender", "prowler"}[r%2]
			obs = append(obs, o)
		}
	}
	if round > 0 {
		// A resource whose cloud changes.
		for i := range obs {
			if obs[i].Resource.ID == "/subscriptions/s2/providers/Microsoft.Insights/components/ai" {
				obs[i].Resource.Cloud = steward.CloudGCP
			}
		}
	}
	return obs
}

// scopeFilters are the listing filters combined with each scope.
var scopeFilters = []store.RecommendationFilter{
	{},
	{Cloud: steward.CloudAzure},
	{Cloud: steward.CloudAWS},
	{Severities: []steward.Severity{steward.SeverityHigh, steward.SeverityCritical}},
	{Status: steward.StatusUnhealthy},
	{Status: steward.StatusNotApplicable},
	{Source: "prowler"},
	{Severities: []steward.Severity{steward.SeverityLow, steward.SeverityCritical}, Cloud: steward.CloudAzure, Status: steward.StatusHealthy},
}

// scopesToList are every level of the estate (and spellings of them), and
// scopes of no level, which fall back to counting on the fly.
func scopesToList(obs []steward.Observation) []steward.Scope {
	set := map[string]bool{}
	for _, o := range obs {
		for _, l := range store.SummaryLevels(steward.NormalizeResourceID(o.Resource.ID)) {
			set[l] = true
		}
	}
	var out []steward.Scope
	for _, s := range slices.Sorted(maps.Keys(set)) {
		out = append(out, steward.Scope(s))
	}
	return append(out,
		"/SUBSCRIPTIONS/S1/", "subscriptions/s1/resourceGroups/RG1", "/subscriptions/none", "/aws/accounts/999",
		// Not levels:
		"/subscriptions/s1/resourcegroups", "/subscriptions/s1/resourcegroups/rg1/providers", "/subscriptions/s",
		"/aws/accounts/111/regions/us-east-1", "/gcp/folders", "/providers")
}

// requireListingsMatch compares every page of every scope and filter, and
// every scoped lookup, with counting on the fly.
func requireListingsMatch(t *testing.T, db *store.DB, scopes []steward.Scope, keys []string) {
	t.Helper()
	ctx := t.Context()
	for _, scope := range scopes {
		for _, f := range scopeFilters {
			f.Scope, f.Limit = scope, 3
			for page := 0; ; page++ {
				got, gotNext, err := db.FindRecommendations(ctx, f)
				require.NoError(t, err)
				want, wantNext, err := db.FindRecommendationsOnTheFly(ctx, f)
				require.NoError(t, err)
				require.Equal(t, want, got, "scope %s filter %+v page %d", scope, f, page)
				require.Equal(t, wantNext, gotNext, "scope %s filter %+v page %d cursor", scope, f, page)
				if gotNext == "" {
					break
				}
				f.Cursor = gotNext
			}
		}
		for _, k := range keys {
			got, gotErr := db.FindRecommendationInScope(ctx, k, scope)
			want, wantErr := db.FindRecommendationInScopeOnTheFly(ctx, k, scope)
			if wantErr != nil {
				storetest.RequireCode(t, gotErr, steward.CodeNotFound)
				storetest.RequireCode(t, wantErr, steward.CodeNotFound)
				continue
			}
			require.NoError(t, gotErr)
			require.Equal(t, want, got, "recommendation %s in scope %s", k, scope)
		}
	}
}

func TestScopeSummariesMatchCountingOnTheFly(t *testing.T) {
	t.Parallel()
	storetest.ForEachBackend(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		t0 := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
		first := scopeEstate(0)
		res := storetest.Apply(t, db, t0, first...)
		require.NoError(t, db.RecomputeRecommendationSummaries(ctx, res.ChangedRecommendations))
		second := scopeEstate(1)
		scopes := scopesToList(second)
		var keys []string
		for r := range 10 {
			keys = append(keys, fmt.Sprintf("rec-%02d", r))
		}
		requireListingsMatch(t, db, scopes, keys)

		// Statuses change, resources and a recommendation arrive, a
		// severity and a cloud change: the summary levels show what the
		// last recompute counted until the next one runs, other scopes
		// count on the fly.
		res = storetest.Apply(t, db, t0.Add(time.Hour), second...)
		require.Positive(t, res.StatusChanged)
		require.Contains(t, res.ChangedRecommendations, "rec-02", "a severity change")
		stale, _, err := db.FindRecommendations(ctx, store.RecommendationFilter{Scope: "/subscriptions/s1", Limit: 100})
		require.NoError(t, err)
		fresh, _, err := db.FindRecommendationsOnTheFly(ctx, store.RecommendationFilter{Scope: "/subscriptions/s1", Limit: 100})
		require.NoError(t, err)
		require.NotEqual(t, fresh, stale, "a summary level reads the summaries")
		require.NotContains(t, recKeys(stale), "rec-09", "not recomputed yet")
		got, _, err := db.FindRecommendations(ctx, store.RecommendationFilter{Scope: "/subscriptions/s1/resourcegroups", Limit: 100})
		require.NoError(t, err)
		want, _, err := db.FindRecommendationsOnTheFly(ctx, store.RecommendationFilter{Scope: "/subscriptions/s1/resourcegroups", Limit: 100})
		require.NoError(t, err)
		require.Equal(t, want, got, "another scope counts on the fly")
		require.Contains(t, recKeys(got), "rec-09")

		require.NoError(t, db.RecomputeRecommendationSummaries(ctx, res.ChangedRecommendations))
		requireListingsMatch(t, db, scopes, keys)

		// A later round that only flips statuses back (an assessment a
		// source no longer reports turns Healthy through the same path).
		var healthy []steward.Observation
		for _, o := range second {
			if o.Resource.ID[:5] == "/aws/" {
				o.Status = steward.StatusHealthy
				o.StatusReason = "no longer reported"
				healthy = append(healthy, o)
			}
		}
		res = storetest.Apply(t, db, t0.Add(2*time.Hour), healthy...)
		require.Positive(t, res.StatusChanged)
		require.NoError(t, db.RecomputeRecommendationSummaries(ctx, res.ChangedRecommendations))
		requireListingsMatch(t, db, scopes, keys)

		// Recomputes of a few recommendations (the ones asked for a
		// quarter or more of them scan every assessment and keep theirs;
		// fewer are counted one recommendation at a time).
		for i, changing := range [][]string{{"rec-03"}, {"rec-04", "rec-06", "rec-07"}} {
			var flips []steward.Observation
			for _, o := range second {
				if slices.Contains(changing, o.Recommendation.Key) {
					o.Status = []steward.AssessmentStatus{steward.StatusNotApplicable, steward.StatusHealthy}[i]
					flips = append(flips, o)
				}
			}
			res = storetest.Apply(t, db, t0.Add(time.Duration(3+i)*time.Hour), flips...)
			require.Equal(t, changing, res.ChangedRecommendations)
			require.NoError(t, db.RecomputeRecommendationSummaries(ctx, res.ChangedRecommendations))
			requireListingsMatch(t, db, scopes, keys)
		}

		// A full recompute gives the same.
		require.NoError(t, db.RecomputeRecommendationSummaries(ctx, nil))
		requireListingsMatch(t, db, scopes, keys)
	})
}

// TestScopeSummariesBuiltByFirstRecompute: a database that held
// assessments before the scope summaries existed (an upgrade) counts on the
// fly until its first recompute, which recomputes every recommendation
// whatever keys it was given.
func TestScopeSummariesBuiltByFirstRecompute(t *testing.T) {
	t.Parallel()
	storetest.ForEachBackend(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		obs := scopeEstate(0)
		storetest.Apply(t, db, time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC), obs...)
		// As migration 0017 leaves a database holding assessments.
		for _, q := range []string{`INSERT INTO meta (key, value) VALUES ('scope_summaries_pending', '1')`, `DELETE FROM recommendation_scope_summary`,
			`DELETE FROM resource_summary_scope`, `DELETE FROM summary_scope`} {
			_, err := db.Writer().ExecContext(ctx, q)
			require.NoError(t, err)
		}
		scopes := scopesToList(obs)
		var keys []string
		for r := range 9 {
			keys = append(keys, fmt.Sprintf("rec-%02d", r))
		}
		requireListingsMatch(t, db, scopes, keys)

		require.NoError(t, db.RecomputeRecommendationSummaries(ctx, []string{"rec-00"}))
		var n int
		require.NoError(t, db.Writer().QueryRowContext(ctx, `SELECT COUNT(DISTINCT recommendation_id) FROM recommendation_scope_summary`).Scan(&n))
		require.Equal(t, 9, n, "every recommendation")
		requireListingsMatch(t, db, scopes, keys)
	})
}

func recKeys(recs []*store.RecommendationSummary) []string {
	var out []string
	for _, r := range recs {
		out = append(out, r.Key)
	}
	return out
}

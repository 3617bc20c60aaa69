package api_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/api"
	"github.com/stewardhq/steward/internal/auth"
	"github.com/stewardhq/steward/internal/auth/authtest"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// A token limited to a scope level lists recommendations, and reads one,
// with the counts of its scope from the scope summaries (as of the last
// recompute, like every listing's counts); a token limited to a scope of
// no level gets them counted on the fly.
func TestScopedTokenReadsScopeSummaries(t *testing.T) {
	t.Parallel()
	storetest.ForEachBackend(t, func(t *testing.T, db *store.DB) {
		logger := storetest.Logger(t)
		a := api.New(api.Config{SpoolDir: t.TempDir()}, api.Deps{DB: db, Auth: auth.NewAuthenticator(db, logger)}, logger, prometheus.NewRegistry())
		srv := httptest.NewServer(a)
		t.Cleanup(srv.Close)
		level := authtest.ScopedToken(t, db, "level", steward.RoleReader, "/SUBSCRIPTIONS/S1")
		other := authtest.ScopedToken(t, db, "other", steward.RoleReader, "/subscriptions/s1/resourceGroups/a/providers")
		counts := func(token, path string) [3]int {
			t.Helper()
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+path, nil)
			require.NoError(t, err)
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := srv.Client().Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
			type summary struct {
				Key           string `json:"key"`
				Unhealthy     int    `json:"unhealthy"`
				Healthy       int    `json:"healthy"`
				NotApplicable int    `json:"not_applicable"`
			}
			var body struct {
				summary           // GET /recommendations/{key}
				Items   []summary `json:"items"` // the list
			}
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
			got := body.summary
			if body.Items != nil {
				require.Len(t, body.Items, 1)
				got = body.Items[0]
			}
			require.Equal(t, "r1", got.Key)
			return [3]int{got.Unhealthy, got.Healthy, got.NotApplicable}
		}
		t0 := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
		storetest.Apply(t, db, t0,
			storetest.Observation("r1", "/subscriptions/s1/resourceGroups/a/providers/x/vm1", steward.StatusUnhealthy),
			storetest.Observation("r1", "/subscriptions/s1/resourceGroups/a/providers/x/vm2", steward.StatusHealthy),
			storetest.Observation("r1", "/subscriptions/s2/vm3", steward.StatusUnhealthy))
		require.NoError(t, db.RecomputeRecommendationSummaries(t.Context(), nil))
		for _, tok := range []string{level, other} {
			require.Equal(t, [3]int{1, 1, 0}, counts(tok, "/api/v1/recommendations"))
			require.Equal(t, [3]int{1, 1, 0}, counts(tok, "/api/v1/recommendations/r1"))
		}

		// Before the recompute the level's token sees the summaries, the
		// other scope is counted now; after it they agree again.
		res := storetest.Apply(t, db, t0.Add(time.Hour),
			storetest.Observation("r1", "/subscriptions/s1/resourceGroups/a/providers/x/vm2", steward.StatusUnhealthy))
		require.Equal(t, [3]int{1, 1, 0}, counts(level, "/api/v1/recommendations"))
		require.Equal(t, [3]int{1, 1, 0}, counts(level, "/api/v1/recommendations/r1"))
		require.Equal(t, [3]int{2, 0, 0}, counts(other, "/api/v1/recommendations"))
		require.NoError(t, db.RecomputeRecommendationSummaries(t.Context(), res.ChangedRecommendations))
		for _, tok := range []string{level, other} {
			require.Equal(t, [3]int{2, 0, 0}, counts(tok, "/api/v1/recommendations"))
			require.Equal(t, [3]int{2, 0, 0}, counts(tok, "/api/v1/recommendations/r1"))
		}
		// A narrower request filter inside the token's scope is a level too.
		require.Equal(t, [3]int{2, 0, 0}, counts(level, "/api/v1/recommendations?scope=/subscriptions/s1/resourcegroups/a"))
	})
}

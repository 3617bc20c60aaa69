package store_test

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// BenchmarkScopedRecommendations lists the first 100 recommendations of a
// scope with 1,000,000 assessments stored (100 recommendations × 10,000
// resources in 10 subscriptions of 37 resource groups each), counted on the
// fly (the path before the scope summaries, kept for other scopes) and read
// from the scope summaries: one subscription (100,000 assessments), one of
// its resource groups, and /subscriptions, which holds all 1,000,000.
//
//	go test -run '^$' -bench ScopedRecommendations -benchtime 200x ./internal/store/
func BenchmarkScopedRecommendations(b *testing.B) {
	if testing.Short() {
		b.Skip("builds 1,000,000 assessments")
	}
	d := newBenchData(100, 10_000)
	db := storetest.MustOpenURL(b, filepath.Join(b.TempDir(), "bench.db"))
	d.apply(b, db, 10_000, time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC), func(int, int) int { return 0 })
	for _, name := range []string{"first (maps 10,000 resources)", "again"} {
		start := time.Now()
		if err := db.RecomputeRecommendationSummaries(b.Context(), nil); err != nil {
			b.Fatal(err)
		}
		b.Logf("recompute all summaries over 1M assessments, %s: %v", name, time.Since(start))
	}
	start := time.Now()
	if err := db.RecomputeRecommendationSummaries(b.Context(), []string{d.recs[0].Key}); err != nil {
		b.Fatal(err)
	}
	b.Logf("recompute one recommendation's summaries (10,000 assessments): %v", time.Since(start))

	sub := steward.Scope("/subscriptions/00000003-0000-0000-0000-000000000000")
	for _, sc := range []struct {
		name  string
		scope steward.Scope
	}{
		{"subscription_100k", sub},
		{"resource_group_2.7k", sub + "/resourceGroups/rg-05"},
		{"all_subscriptions_1M", "/subscriptions"},
	} {
		for _, path := range []struct {
			name string
			find func(store.RecommendationFilter) ([]*store.RecommendationSummary, string, error)
		}{
			{"on_the_fly", func(f store.RecommendationFilter) ([]*store.RecommendationSummary, string, error) {
				return db.FindRecommendationsOnTheFly(b.Context(), f)
			}},
			{"summary", func(f store.RecommendationFilter) ([]*store.RecommendationSummary, string, error) {
				return db.FindRecommendations(b.Context(), f)
			}},
		} {
			b.Run(sc.name+"/"+path.name, func(b *testing.B) {
				f := store.RecommendationFilter{Scope: sc.scope, Limit: 100}
				var lat []time.Duration
				for b.Loop() {
					start := time.Now()
					recs, _, err := path.find(f)
					lat = append(lat, time.Since(start))
					if err != nil || len(recs) != 100 {
						b.Fatalf("got %d recommendations, err %v", len(recs), err)
					}
				}
				slices.Sort(lat)
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			})
		}
	}
}

package store_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
	"github.com/stretchr/testify/require"
)

// benchData generates recs × resources observations, resource-major (a
// source reports every check of a resource together), in chunks.
type benchData struct {
	recs      []steward.Recommendation
	resources []steward.Resource
}

func newBenchData(recs, resources int) *benchData {
	d := &benchData{}
	for i := range recs {
		d.recs = append(d.recs, steward.Recommendation{
			Key:         fmt.Sprintf("rec-%04d-%08x", i, uint32(i)*2654435761),
			DisplayName: fmt.Sprintf("Recommendation %d", i),
			Description: "A security check used by benchmarks.",
			Severity:    steward.Severities[i%4],
			Category:    "Compute",
			Source:      "bench",
		})
	}
	for i := range resources {
		sub := i % 10
		d.resources = append(d.resources, steward.Resource{
			ID: fmt.Sprintf("/subscriptions/%08d-0000-0000-0000-000000000000/resourceGroups/rg-%02d/providers/Microsoft.Compute/virtualMachines/vm-%06d",
				sub, i%37, i),
			Name:   fmt.Sprintf("vm-%06d", i),
			Type:   "microsoft.compute/virtualmachines",
			Cloud:  steward.CloudAzure,
			Region: "westeurope",
			Tags:   map[string]string{"env": "prod"},
		})
	}
	return d
}

func (d *benchData) status(rec, res, round int) steward.AssessmentStatus {
	switch h := (rec*7919 + res*104729 + round*15485863) % 10; {
	case h < 3:
		return steward.StatusUnhealthy
	case h < 9:
		return steward.StatusHealthy
	default:
		return steward.StatusNotApplicable
	}
}

// apply applies every observation in chunks of chunk observations and
// returns the summed result. round varies statuses: round r changes the
// status of roughly changedPct percent of assessments.
func (d *benchData) apply(tb testing.TB, db *store.DB, chunk int, at time.Time, round func(rec, res int) int) store.ApplyResult {
	var total store.ApplyResult
	buf := make([]steward.Observation, 0, chunk)
	flush := func() {
		if len(buf) == 0 {
			return
		}
		require.NoError(tb, db.WithTx(tb.Context(), func(tx *store.Tx) error {
			res, err := tx.ApplyObservations(tb.Context(), buf, at)
			total.Add(res)
			return err
		}))
		buf = buf[:0]
	}
	for j := range d.resources {
		for i := range d.recs {
			buf = append(buf, steward.Observation{
				Resource: d.resources[j], Recommendation: d.recs[i], Status: d.status(i, j, round(i, j)),
			})
			if len(buf) == chunk {
				flush()
			}
		}
	}
	flush()
	return total
}

func peakRSSMB() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Maxrss) / 1024 // Linux reports KiB
}

// BenchmarkApplyObservations ingests 100 recommendations × 10,000 resources
// (1,000,000 observations; 100,000 with -short) in chunks of 10,000 per
// transaction into a fresh database, then re-applies the same scan three
// ways: identical, one hour later (only last-seen moves), and with ~1% of
// statuses flipped.
func BenchmarkApplyObservations(b *testing.B) {
	resources := 10_000
	if testing.Short() {
		resources = 1_000
	}
	const chunk = 10_000
	d := newBenchData(100, resources)
	n := len(d.recs) * len(d.resources)
	t0 := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	same := func(int, int) int { return 0 }

	run := func(b *testing.B, name string, prepare func(b *testing.B, db *store.DB), apply func(b *testing.B, db *store.DB) store.ApplyResult,
		check func(b *testing.B, res store.ApplyResult)) {
		b.Run(name, func(b *testing.B) {
			var elapsed time.Duration
			var loops int
			for b.Loop() {
				b.StopTimer()
				db := storetest.MustOpenURL(b, filepath.Join(b.TempDir(), "bench.db"))
				if prepare != nil {
					prepare(b, db)
				}
				b.StartTimer()
				start := time.Now()
				res := apply(b, db)
				elapsed += time.Since(start)
				loops++
				check(b, res)
			}
			b.ReportMetric(float64(n*loops)/elapsed.Seconds(), "obs/s")
			b.ReportMetric(peakRSSMB(), "peak-RSS-MB")
		})
	}
	initial := func(b *testing.B, db *store.DB) { d.apply(b, db, chunk, t0, same) }

	run(b, "fresh", nil, func(b *testing.B, db *store.DB) store.ApplyResult {
		return d.apply(b, db, chunk, t0, same)
	}, func(b *testing.B, res store.ApplyResult) {
		require.Equal(b, n, res.AssessmentsCreated)
	})
	run(b, "identical", initial, func(b *testing.B, db *store.DB) store.ApplyResult {
		return d.apply(b, db, chunk, t0, same)
	}, func(b *testing.B, res store.ApplyResult) {
		require.Equal(b, n, res.Unchanged)
	})
	run(b, "newer", initial, func(b *testing.B, db *store.DB) store.ApplyResult {
		return d.apply(b, db, chunk, t0.Add(time.Hour), same)
	}, func(b *testing.B, res store.ApplyResult) {
		require.Equal(b, n, res.Unchanged)
	})
	run(b, "1pct_changed", initial, func(b *testing.B, db *store.DB) store.ApplyResult {
		return d.apply(b, db, chunk, t0.Add(time.Hour), func(rec, res int) int {
			if (rec+res)%100 == 0 {
				return 1
			}
			return 0
		})
	}, func(b *testing.B, res store.ApplyResult) {
		require.Positive(b, res.StatusChanged)
	})
}

// BenchmarkFindRecommendations lists the first page of 100 recommendations
// with 1,000,000 assessments stored (100 recommendations × 10,000 resources),
// built once. It reports p50/p99 latency per call. Skipped with -short.
func BenchmarkFindRecommendations(b *testing.B) {
	if testing.Short() {
		b.Skip("builds 1,000,000 assessments")
	}
	d := newBenchData(100, 10_000)
	db := storetest.MustOpenURL(b, filepath.Join(b.TempDir(), "bench.db"))
	d.apply(b, db, 10_000, time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC), func(int, int) int { return 0 })
	start := time.Now()
	require.NoError(b, db.RecomputeRecommendationSummaries(b.Context(), nil))
	b.Logf("recompute all summaries over 1M assessments: %v", time.Since(start))

	sub := steward.Scope("/subscriptions/00000003-0000-0000-0000-000000000000")
	for _, tc := range []struct {
		name string
		f    store.RecommendationFilter
	}{
		{"unfiltered", store.RecommendationFilter{}},
		{"status_unhealthy", store.RecommendationFilter{Status: steward.StatusUnhealthy}},
		{"severity_cloud", store.RecommendationFilter{Severities: []steward.Severity{steward.SeverityHigh, steward.SeverityCritical}, Cloud: steward.CloudAzure}},
		{"scope_subscription", store.RecommendationFilter{Scope: sub}},
		{"scope_resource_group", store.RecommendationFilter{Scope: sub + "/resourceGroups/rg-05"}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			f := tc.f
			f.Limit = 100
			var lat []time.Duration
			for b.Loop() {
				start := time.Now()
				recs, _, err := db.FindRecommendations(b.Context(), f)
				lat = append(lat, time.Since(start))
				if err != nil || len(recs) == 0 {
					b.Fatalf("got %d recommendations, err %v", len(recs), err)
				}
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}

package store

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/store/pgtest"
)

// BenchmarkCopy measures Copy of a SQLite database with 200,000
// assessments into PostgreSQL, written with COPY against multi-row INSERTs
// and at several batch sizes (docs/postgres.md):
//
//	STEWARD_TEST_POSTGRES_URL=... go test ./internal/store -run '^$' -bench BenchmarkCopy -benchtime 1x
func BenchmarkCopy(b *testing.B) {
	pgtest.Require(b)
	ctx := context.Background()
	src, err := Open(ctx, filepath.Join(b.TempDir(), "steward.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	const recs, resources = 100, 2000
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for r := 0; r < resources; r += 50 {
		var obs []steward.Observation
		for res := r; res < r+50; res++ {
			for rec := range recs {
				obs = append(obs, steward.Observation{
					Resource:       steward.Resource{ID: fmt.Sprintf("/subscriptions/sub-%02d/resourceGroups/rg/providers/vm/vm-%05d", res%20, res), Cloud: steward.CloudAzure},
					Recommendation: steward.Recommendation{Key: fmt.Sprintf("rec-%03d", rec), DisplayName: "R", Severity: steward.SeverityHigh},
					Status:         steward.StatusUnhealthy,
				})
			}
		}
		if err := src.WithTx(ctx, func(tx *Tx) error { _, err := tx.ApplyObservations(ctx, obs, at); return err }); err != nil {
			b.Fatal(err)
		}
	}
	for _, c := range []struct {
		name   string
		insert bool
		batch  int
	}{{"copy-5000", false, 5000}, {"copy-1000", false, 1000}, {"copy-10000", false, 10000}, {"copy-20000", false, 20000}, {"insert-5000", true, 5000}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				dst, err := Open(ctx, pgtest.URL(b), nil)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				start := time.Now()
				report, err := Copy(ctx, src, dst, CopyOptions{BatchRows: c.batch, insert: c.insert})
				if err != nil {
					b.Fatal(err)
				}
				for _, t := range report.Tables {
					if t.Table == "assessment" {
						b.ReportMetric(float64(t.Rows)/t.Duration.Seconds(), "assessments/s")
					}
				}
				b.ReportMetric(time.Since(start).Seconds(), "s/copy")
				b.StopTimer()
				dst.Close()
				b.StartTimer()
			}
		})
	}
}

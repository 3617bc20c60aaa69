// Package report takes the governance report's daily snapshots
// (docs/reports.md): a periodic job that asks the store to take every ended
// day not yet taken, once across restarts and processes, and to refresh
// today's provisional counts. The report itself is a store query
// (store.DB.GovernanceReport) the API answers.
package report

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"github.com/stewardhq/steward/internal/jobs"
	"github.com/stewardhq/steward/internal/store"
)

// Defaults: how often the job looks, and how stale today's provisional
// counts may get when nothing changes (they are refreshed within a minute
// or two of a change: store.TakeGovernanceSnapshots). A look that finds
// nothing to do costs a few small reads; a refresh reads the whole history
// once (docs/benchmarks.md).
const (
	SnapshotInterval   = time.Minute
	ProvisionalRefresh = 15 * time.Minute
)

// snapshotTimeout bounds one run: a first backfill of a large estate reads
// all of its history. It stays under River's RescueStuckJobsAfter.
const snapshotTimeout = 10 * time.Minute

// Config tunes the snapshotter; zero fields take the defaults.
type Config struct {
	// Refresh is how old today's provisional counts may get.
	Refresh time.Duration
	// Now is the clock (tests step over midnight with it).
	Now func() time.Time
}

// Snapshotter takes the snapshots.
type Snapshotter struct {
	db      *store.DB
	cfg     Config
	logger  *slog.Logger
	days    *prometheus.CounterVec
	seconds prometheus.Histogram
}

// New returns a Snapshotter; reg (may be nil) receives its metrics.
func New(db *store.DB, cfg Config, logger *slog.Logger, reg prometheus.Registerer) *Snapshotter {
	if cfg.Refresh <= 0 {
		cfg.Refresh = ProvisionalRefresh
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Snapshotter{db: db, cfg: cfg, logger: logger,
		days: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "steward_governance_snapshot_days_total",
			Help: "Days whose governance snapshot this process took, by source (daily: the day after; backfill: from history).",
		}, []string{"source"}),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "steward_governance_snapshot_seconds",
			Help:    "Duration of governance snapshot runs that wrote something.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 9),
		}),
	}
	if reg != nil {
		reg.MustRegister(s.days, s.seconds)
	}
	return s
}

// Take takes every ended day not yet taken and refreshes today's
// provisional counts if they are older than the refresh interval.
func (s *Snapshotter) Take(ctx context.Context) (store.GovernanceSnapshots, error) {
	start := time.Now()
	res, err := s.db.TakeGovernanceSnapshots(ctx, s.cfg.Now(), s.cfg.Refresh)
	if err != nil {
		return res, fmt.Errorf("take governance snapshots: %w", err)
	}
	if res.Finalized == 0 && !res.Provisional {
		return res, nil
	}
	s.seconds.Observe(time.Since(start).Seconds())
	if res.Finalized > 0 {
		source := "daily"
		if res.Backfilled {
			source = "backfill"
		}
		s.days.WithLabelValues(source).Add(float64(res.Finalized))
		s.logger.Info("governance snapshots taken", "days", res.Finalized, "source", source, "rows", res.Rows,
			"took", time.Since(start).Round(time.Millisecond))
	}
	return res, nil
}

// PeriodicJobs is the governance_snapshot tick, every interval (0: the
// default); it also runs at start, so a fresh database has today's counts.
func PeriodicJobs(interval time.Duration) []*river.PeriodicJob {
	if interval <= 0 {
		interval = SnapshotInterval
	}
	return []*river.PeriodicJob{river.NewPeriodicJob(river.PeriodicInterval(interval),
		func() (river.JobArgs, *river.InsertOpts) { return jobs.GovernanceSnapshotArgs{}, nil },
		&river.PeriodicJobOpts{RunOnStart: true})}
}

// AddWorkers registers the snapshot worker.
func AddWorkers(workers *river.Workers, s *Snapshotter) {
	river.AddWorker(workers, &snapshotWorker{s: s})
}

type snapshotWorker struct {
	river.WorkerDefaults[jobs.GovernanceSnapshotArgs]
	s *Snapshotter
}

func (w *snapshotWorker) Timeout(*river.Job[jobs.GovernanceSnapshotArgs]) time.Duration {
	return snapshotTimeout
}

func (w *snapshotWorker) Work(ctx context.Context, _ *river.Job[jobs.GovernanceSnapshotArgs]) error {
	_, err := w.s.Take(ctx)
	return err
}

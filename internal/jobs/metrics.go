package jobs

import (
	"context"
	"database/sql"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
)

// RecordMetrics counts finished jobs and their run time by kind and
// outcome, from River's event stream, until ctx ends. Kinds are a fixed set
// of our own job names, so the labels stay bounded.
func RecordMetrics(ctx context.Context, client *river.Client[*sql.Tx], reg prometheus.Registerer) {
	total := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "steward_jobs_total",
		Help: "Background jobs finished, by kind and outcome (completed, failed, cancelled, snoozed).",
	}, []string{"kind", "outcome"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "steward_job_duration_seconds",
		Help:    "Time a background job ran, by kind.",
		Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
	}, []string{"kind"})
	wait := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "steward_job_queue_wait_seconds",
		Help:    "Time a background job waited before it started, by kind.",
		Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
	}, []string{"kind"})
	reg.MustRegister(total, duration, wait)

	events, cancel := client.Subscribe(river.EventKindJobCompleted, river.EventKindJobFailed,
		river.EventKindJobCancelled, river.EventKindJobSnoozed)
	go func() {
		defer cancel()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-events:
				if !ok {
					return
				}
				if ev.Job == nil {
					continue
				}
				outcome := map[river.EventKind]string{
					river.EventKindJobCompleted: "completed", river.EventKindJobFailed: "failed",
					river.EventKindJobCancelled: "cancelled", river.EventKindJobSnoozed: "snoozed",
				}[ev.Kind]
				total.WithLabelValues(ev.Job.Kind, outcome).Inc()
				if ev.JobStats != nil {
					duration.WithLabelValues(ev.Job.Kind).Observe(ev.JobStats.RunDuration.Seconds())
					wait.WithLabelValues(ev.Job.Kind).Observe(ev.JobStats.QueueWaitDuration.Seconds())
				}
			}
		}
	}()
}

package ticketsync

import "github.com/prometheus/client_golang/prometheus"

// syncMetrics are the sync metrics. Labels stay bounded: integration names
// (one per configured integration), via, outcome, result and op from fixed
// sets; never ticket numbers or IDs.
type syncMetrics struct {
	lag          *prometheus.GaugeVec
	events       *prometheus.CounterVec
	pollRequests *prometheus.CounterVec
	repairs      *prometheus.CounterVec
	errors       *prometheus.CounterVec
	applied      *prometheus.CounterVec
	// pending and batch describe the webhook drain (sync_drain.go).
	pending *prometheus.GaugeVec
	batch   prometheus.Histogram
}

func newSyncMetrics(reg prometheus.Registerer) *syncMetrics {
	m := &syncMetrics{
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "steward_sync_lag_seconds",
			Help: "Upper bound of the sync lag per integration: now minus the start of the last successful poll (every ITSM change before it is applied).",
		}, []string{"integration"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "steward_sync_events_total",
			Help: "Webhook deliveries per integration by result (accepted, rejected).",
		}, []string{"integration", "result"}),
		pollRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "steward_sync_poll_requests_total",
			Help: "Incremental poll queries (one per table per poll; each may read several pages).",
		}, []string{"integration"}),
		repairs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "steward_sync_reconcile_repairs_total",
			Help: "Tickets a full reconcile found out of sync and repaired.",
		}, []string{"integration"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "steward_sync_errors_total",
			Help: "Sync failures per integration by operation (poll, reconcile, refresh, apply, push).",
		}, []string{"integration", "op"}),
		applied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "steward_sync_applied_total",
			Help: "Remote ticket views applied, by path (webhook, poll, reconcile, push) and outcome (changed, ended, conflict, unchanged, stale, deleted).",
		}, []string{"via", "outcome"}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "steward_sync_pending",
			Help: "Records announced by webhooks and not applied yet, per integration (as the drainer last counted them).",
		}, []string{"integration"}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "steward_sync_drain_batch_size",
			Help:    "Records per Table API read of the webhook drain.",
			Buckets: []float64{1, 2, 5, 10, 20, 50, 100, 200, 500},
		}),
	}
	if reg != nil {
		reg.MustRegister(m.lag, m.events, m.pollRequests, m.repairs, m.errors, m.applied, m.pending, m.batch)
	}
	return m
}

package ingest

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/store"
)

// Values of the "source" label.
const (
	sourceAPI    = "api"
	sourceImport = "import"
	// sourcePull is a chunk a live source read (internal/collector).
	sourcePull = "pull"
)

type metrics struct {
	observations *prometheus.CounterVec
	batches      *prometheus.CounterVec
	duration     *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		observations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "steward_ingest_observations_total",
			Help: "Observations applied, by what they did to their assessment.",
		}, []string{"result"}),
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "steward_ingest_batches_total",
			Help: "API batches and import files processed, by outcome.",
		}, []string{"source", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "steward_ingest_duration_seconds",
			Help:    "Time to validate and apply one API batch or import file.",
			Buckets: prometheus.ExponentialBuckets(0.005, 4, 10), // 5ms … ~22min
		}, []string{"source"}),
	}
	for _, r := range []string{"created", "changed", "unchanged"} {
		m.observations.WithLabelValues(r)
	}
	for _, s := range []string{sourceAPI, sourceImport, sourcePull} {
		for _, o := range []string{"ok", "invalid", "error"} {
			m.batches.WithLabelValues(s, o)
		}
		m.duration.WithLabelValues(s)
	}
	if reg != nil {
		reg.MustRegister(m.observations, m.batches, m.duration)
	}
	return m
}

func (m *metrics) observe(source string, res store.ApplyResult, err error, took time.Duration) {
	outcome := "ok"
	switch {
	case err == nil:
		m.observations.WithLabelValues("created").Add(float64(res.AssessmentsCreated))
		m.observations.WithLabelValues("changed").Add(float64(res.StatusChanged))
		m.observations.WithLabelValues("unchanged").Add(float64(res.Unchanged))
	case steward.ErrorCode(err) == steward.CodeInvalid:
		outcome = "invalid"
	default:
		outcome = "error"
	}
	m.batches.WithLabelValues(source, outcome).Inc()
	m.duration.WithLabelValues(source).Observe(took.Seconds())
}

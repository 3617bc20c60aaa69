package ticketsync

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	tickets        *prometheus.CounterVec
	createDuration *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		tickets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "steward_tickets_total",
			Help: "Ticket creation outcomes by ticket type and outcome (created, deferred, retrying, failed).",
		}, []string{"type", "outcome"}),
		createDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "steward_ticket_create_duration_seconds",
			Help:    "Time one ticket creation try took against the ITSM, retries inside the client included.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2.5, 10),
		}, []string{"type"}),
	}
	if reg != nil {
		reg.MustRegister(m.tickets, m.createDuration)
	}
	return m
}

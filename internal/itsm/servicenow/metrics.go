package servicenow

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the client's Prometheus collectors. Build one per process
// with NewMetrics and pass it to every Client with WithMetrics; the
// integration label tells clients apart. Labels stay bounded: integration
// names, configured table names, HTTP methods and status codes.
type Metrics struct {
	requests *prometheus.CounterVec
	retries  *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewMetrics registers the collectors with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "steward_servicenow_requests_total",
			Help: "HTTP requests sent to ServiceNow, by integration, table, method and status code (0: no answer).",
		}, []string{"integration", "table", "method", "code"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "steward_servicenow_retries_total",
			Help: "ServiceNow requests sent again after a retryable failure, by integration, table and error kind.",
		}, []string{"integration", "table", "kind"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "steward_servicenow_request_duration_seconds",
			Help:    "Time from sending a ServiceNow request to reading its answer.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2.5, 10),
		}, []string{"integration", "table", "method"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.retries, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) request(integration, table, method string, status int) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(integration, table, method, strconv.Itoa(status)).Inc()
}

func (m *Metrics) retry(integration, table, kind string) {
	if m == nil {
		return
	}
	m.retries.WithLabelValues(integration, table, kind).Inc()
}

func (m *Metrics) observe(integration, table, method string, d time.Duration) {
	if m == nil {
		return
	}
	m.duration.WithLabelValues(integration, table, method).Observe(d.Seconds())
}

package scope

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics of the admission handler.
type Metrics struct {
	requests *prometheus.CounterVec
	denials  *prometheus.CounterVec
	latency  prometheus.Histogram
}

// NewMetrics creates the handler's metrics and registers them with reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_admission_requests_total",
			Help: "Pod admission requests by outcome (injected, unchanged, skipped, denied, error).",
		}, []string{"outcome"}),
		denials: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_admission_denials_total",
			Help: "Denied pods by reason.",
		}, []string{"reason"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "warden_admission_duration_seconds",
			Help:    "Time spent deciding one admission request, excluding transport.",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .1, .5},
		}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.denials, m.latency)
	}
	return m
}

func (m *Metrics) observe(outcome, reason string, d time.Duration) {
	m.requests.WithLabelValues(outcome).Inc()
	if reason != "" {
		m.denials.WithLabelValues(reason).Inc()
	}
	m.latency.Observe(d.Seconds())
}

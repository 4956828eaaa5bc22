package broker

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics count the broker's answers by route and status, so that Prometheus sees broker, IAM
// and Google API failures in the webhook process (sidecars serve theirs on loopback only).
type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_broker_requests_total",
			Help: "Broker answers, by route (the API's path pattern) and HTTP status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "warden_broker_request_seconds",
			Help:    "Time the broker took to answer, by route.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"route"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// ServeHTTP answers through the mux and counts the answer under the pattern that matched (a
// bounded set: never the raw path, which a caller controls).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w}
	s.mux.ServeHTTP(rec, r)
	route := r.Pattern
	if route == "" || route == "/" {
		route = "other"
	}
	if rec.code == 0 {
		rec.code = http.StatusOK
	}
	s.metrics.requests.WithLabelValues(route, strconv.Itoa(rec.code)).Inc()
	s.metrics.latency.WithLabelValues(route).Observe(time.Since(start).Seconds())
}

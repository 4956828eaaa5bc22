package cloudstorage

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	credentials *prometheus.CounterVec
	mintSeconds prometheus.Histogram
	signedURLs  *prometheus.CounterVec
	commits     *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (metrics, error) {
	m := metrics{
		credentials: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_storage_credentials_total",
			Help: "Storage credentials handed out by the broker, by access kind and result (cached, minted, unavailable, denied, error).",
		}, []string{"access", "result"}),
		mintSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "warden_storage_mint_seconds",
			Help:    "Time to mint a storage credential (IAM Credentials and STS), cache misses only.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}),
		signedURLs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_storage_signed_urls_total",
			Help: "Signed URLs made by the broker, by method and result.",
		}, []string{"method", "result"}),
		commits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_storage_commits_total",
			Help: "Loading-zone commits, by result (ok, unavailable: Cloud Storage or Pub/Sub down, denied: refused by Google, error: the request's own fault).",
		}, []string{"result"}),
	}
	// Every result exists from the start at 0, so that rate() and alerts see the first failure.
	for _, r := range []string{"ok", "unavailable", "denied", "error"} {
		m.commits.WithLabelValues(r)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.credentials, m.mintSeconds, m.signedURLs, m.commits} {
			if err := reg.Register(c); err != nil {
				return m, err
			}
		}
	}
	return m, nil
}

func result(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrUnavailable):
		return "unavailable"
	case errors.Is(err, ErrDenied):
		return "denied"
	}
	return "error"
}

func (m metrics) observe(access string, hit bool, err error, took time.Duration) {
	r := result(err)
	if err == nil {
		r = "minted"
		if hit {
			r = "cached"
		}
	}
	m.credentials.WithLabelValues(access, r).Inc()
	if err == nil && !hit {
		m.mintSeconds.Observe(took.Seconds())
	}
}

func (m metrics) signed(method string, err error) {
	m.signedURLs.WithLabelValues(method, result(err)).Inc()
}

func (m metrics) committed(err error) {
	m.commits.WithLabelValues(result(err)).Inc()
}

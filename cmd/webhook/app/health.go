package app

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/warden-dev/warden/internal/serve"
	"github.com/warden-dev/warden/pkg/admission"
	"github.com/warden-dev/warden/pkg/health"
)

// addChecks registers what /readyz reports: the policy file, the policy objects, the admission
// TLS listener and the namespace cache the scope check reads.
func (s *Server) addChecks() {
	mgr := s.mgr
	if s.policy != nil {
		s.checks.Add("policy", s.policy.Check)
	}
	s.checks.Add("policy-objects", s.policyCheck)
	started := mgr.GetWebhookServer().StartedChecker()
	s.checks.Add("admission-tls", func() (health.State, string) {
		if err := started(nil); err != nil {
			return health.Failing, err.Error()
		}
		return health.OK, "serving " + admission.MutatePath + " and " + admission.ValidatePath
	})
	s.checks.Add("namespace-cache", func() (health.State, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if !mgr.GetCache().WaitForCacheSync(ctx) {
			return health.Failing, "namespace cache not synced yet"
		}
		return health.OK, "synced"
	})
}

// serveHealth serves /healthz, /readyz and /metrics (Warden's and controller-runtime's) over
// plain HTTP until ctx ends.
func (s *Server) serveHealth(ctx context.Context, errc chan<- error) {
	if s.health == nil {
		return
	}
	mux := http.NewServeMux()
	mux.Handle("/healthz", health.Healthz())
	mux.Handle("/readyz", s.checks.Readyz())
	mux.Handle("/metrics", promhttp.HandlerFor(prometheus.Gatherers{s.opts.Registry, ctrlmetrics.Registry}, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := serve.Until(ctx, srv, s.health); err != nil {
			errc <- err
		}
	}()
}

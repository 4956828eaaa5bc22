// Package sidecar is the per-pod HTTP API app code calls on 127.0.0.1:$WARDEN_PORT: list the
// datasets it may read, check access, list a folder, stage a file into its read-only data
// directory, delete a staged copy. Every decision is audited. JSON in and out; errors are
// {"error": "...", "code": "..."} with a status that says what happened. The paths and the
// bodies are pkg/sidecarapi's, which clients share.
package sidecar

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/warden-dev/warden/internal/httpjson"
	"github.com/warden-dev/warden/pkg/audit"
	"github.com/warden-dev/warden/pkg/contract"
	"github.com/warden-dev/warden/pkg/grants"
	"github.com/warden-dev/warden/pkg/health"
	"github.com/warden-dev/warden/pkg/sidecarapi"
	"github.com/warden-dev/warden/pkg/stage"
)

// Config of the API server.
type Config struct {
	Owner       string
	Environment string
	Workload    contract.Workload
	Grants      grants.Source
	Stager      *stage.Stager
	Callers     CallerResolver
	// Secrets is nil when no Vault is configured: the secrets endpoints answer 501.
	Secrets         SecretStore
	SecretsMaxBytes int
	// Broker answers the GCP workload identity endpoints (nil in local mode: they answer 501).
	Broker Broker
	// Storage answers the Cloud Storage endpoints (nil in local mode: they answer 501).
	Storage  StorageBroker
	Audit    *audit.Logger
	Log      *slog.Logger
	Checks   *health.Checks
	Registry *prometheus.Registry
	// RequestTimeout bounds one request, staging included (default 5 minutes).
	RequestTimeout time.Duration
	// MaxBodyBytes bounds request bodies (default 64 KiB).
	MaxBodyBytes int64
}

// Server serves the sidecar API.
type Server struct {
	cfg      Config
	mux      *httpjson.Router
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	staged   prometheus.Counter
}

// New returns a ready server.
func New(cfg Config) (*Server, error) {
	if cfg.Grants == nil || cfg.Stager == nil || cfg.Callers == nil {
		return nil, errors.New("sidecar: grants, stager and caller resolver are required")
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 5 * time.Minute
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 64 << 10
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Checks == nil {
		cfg.Checks = &health.Checks{}
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	s := &Server{
		cfg: cfg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_sidecar_requests_total", Help: "Sidecar API requests by route and status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "warden_sidecar_request_duration_seconds", Help: "Sidecar API request latency by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .5, 1, 5, 30},
		}, []string{"route"}),
		staged: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "warden_sidecar_staged_bytes_total", Help: "Bytes copied into the staging folder.",
		}),
	}
	usage := func(files bool) func() float64 {
		return func() float64 {
			b, n := cfg.Stager.Usage()
			if files {
				return float64(n)
			}
			return float64(b)
		}
	}
	if err := registerAll(cfg.Registry, s.requests, s.latency, s.staged,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "warden_sidecar_staged_files", Help: "Copies currently staged."}, usage(true)),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "warden_sidecar_staged_bytes", Help: "Bytes currently staged (counted against the quota)."}, usage(false)),
	); err != nil {
		return nil, err
	}

	s.mux = httpjson.NewRouter(s.instrument)
	s.mux.Route(sidecarapi.PathHealthz, get(health.Healthz().ServeHTTP))
	s.mux.Route(sidecarapi.PathReadyz, get(cfg.Checks.Readyz().ServeHTTP))
	s.mux.Route(sidecarapi.PathMetrics, get(promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{}).ServeHTTP))
	s.mux.Route(sidecarapi.PathDatasets, get(s.listDatasets))
	s.mux.Route(sidecarapi.PathDatasetAccess, get(s.access))
	s.mux.Route(sidecarapi.PathDatasetFiles, get(s.files))
	s.mux.Route(sidecarapi.PathDatasetStage, httpjson.Methods{http.MethodPost: s.stage})
	s.mux.Route(sidecarapi.PathStaged, httpjson.Methods{http.MethodDelete: s.deleteStaged})
	s.mux.Route(sidecarapi.PathSecrets, httpjson.Methods{http.MethodGet: s.secretsList, http.MethodPut: s.secretsPut, http.MethodDelete: s.secretsDeleteAll})
	s.mux.Route(sidecarapi.PathSecret, httpjson.Methods{http.MethodGet: s.secretGet, http.MethodDelete: s.secretDelete})
	s.mux.Route(sidecarapi.PathIdentityOrgs, get(s.identityOrgs))
	s.mux.Route(sidecarapi.PathIdentityGCP, httpjson.Methods{http.MethodPost: s.identityBind, http.MethodDelete: s.identityReset})
	s.mux.Route(sidecarapi.PathAccess, get(s.whatMayIDo))
	s.mux.Route(sidecarapi.PathStorageCredentials, httpjson.Methods{http.MethodPost: s.storageCredentials})
	s.mux.Route(sidecarapi.PathStorageSignedURL, httpjson.Methods{http.MethodPost: s.storageSignedURL})
	s.mux.Route(sidecarapi.PathStorageCommit, httpjson.Methods{http.MethodPost: s.storageCommit})
	return s, nil
}

func registerAll(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// instrument wraps each path's handlers: a per-request timeout, panic recovery and metrics.
func (s *Server) instrument(pattern string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		defer func() {
			if p := recover(); p != nil {
				s.cfg.Log.Error("panic in sidecar handler", "panic", p, "path", r.URL.Path)
				if !rec.wrote {
					httpjson.WriteError(rec, http.StatusInternalServerError, httpjson.CodeInternal, "internal error")
				}
			}
			s.requests.WithLabelValues(pattern, strconv.Itoa(rec.code)).Inc()
			s.latency.WithLabelValues(pattern).Observe(time.Since(start).Seconds())
		}()
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
		defer cancel()
		h(rec, r.WithContext(ctx))
	}
}

func get(h http.HandlerFunc) httpjson.Methods { return httpjson.Methods{http.MethodGet: h} }

type statusRecorder struct {
	http.ResponseWriter
	code  int
	wrote bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wrote {
		r.code, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.ResponseWriter.Write(b)
}

// decodeBody reads one JSON object, refusing unknown fields, trailing data and big bodies.
func (s *Server) decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	err := httpjson.Decode(w, r, v, s.cfg.MaxBodyBytes)
	if errors.Is(err, httpjson.ErrMalformed) {
		return fmt.Errorf("%w: %v", errBody, err)
	}
	return err
}

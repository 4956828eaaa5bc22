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
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
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
	mux      *http.ServeMux
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
		mux: http.NewServeMux(),
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

	s.route(sidecarapi.PathHealthz, get(health.Healthz().ServeHTTP))
	s.route(sidecarapi.PathReadyz, get(cfg.Checks.Readyz().ServeHTTP))
	s.route(sidecarapi.PathMetrics, get(promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{}).ServeHTTP))
	s.route(sidecarapi.PathDatasets, get(s.listDatasets))
	s.route(sidecarapi.PathDatasetAccess, get(s.access))
	s.route(sidecarapi.PathDatasetFiles, get(s.files))
	s.route(sidecarapi.PathDatasetStage, map[string]http.HandlerFunc{http.MethodPost: s.stage})
	s.route(sidecarapi.PathStaged, map[string]http.HandlerFunc{http.MethodDelete: s.deleteStaged})
	s.route(sidecarapi.PathSecrets, map[string]http.HandlerFunc{http.MethodGet: s.secretsList, http.MethodPut: s.secretsPut, http.MethodDelete: s.secretsDeleteAll})
	s.route(sidecarapi.PathSecret, map[string]http.HandlerFunc{http.MethodGet: s.secretGet, http.MethodDelete: s.secretDelete})
	s.route(sidecarapi.PathIdentityOrgs, get(s.identityOrgs))
	s.route(sidecarapi.PathIdentityGCP, map[string]http.HandlerFunc{http.MethodPost: s.identityBind, http.MethodDelete: s.identityReset})
	s.route(sidecarapi.PathAccess, get(s.whatMayIDo))
	s.route(sidecarapi.PathStorageCredentials, map[string]http.HandlerFunc{http.MethodPost: s.storageCredentials})
	s.route(sidecarapi.PathStorageSignedURL, map[string]http.HandlerFunc{http.MethodPost: s.storageSignedURL})
	s.route(sidecarapi.PathStorageCommit, map[string]http.HandlerFunc{http.MethodPost: s.storageCommit})
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		httpjson.WriteError(w, http.StatusNotFound, httpjson.CodeNotFound, fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path))
	})
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

// route registers a path's handlers by method, with JSON 405s for other methods, a per-request
// timeout, panic recovery and metrics.
func (s *Server) route(pattern string, handlers map[string]http.HandlerFunc) {
	allowed := slices.Sorted(maps.Keys(handlers))
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
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
		h, ok := handlers[r.Method]
		if !ok && r.Method == http.MethodHead {
			h, ok = handlers[http.MethodGet]
		}
		if !ok {
			rec.Header().Set("Allow", strings.Join(allowed, ", "))
			httpjson.WriteError(rec, http.StatusMethodNotAllowed, httpjson.CodeMethodNotAllowed, fmt.Sprintf("%s %s is not supported; use %s", r.Method, pattern, strings.Join(allowed, " or ")))
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
		defer cancel()
		h(rec, r.WithContext(ctx))
	})
}

func get(h http.HandlerFunc) map[string]http.HandlerFunc {
	return map[string]http.HandlerFunc{http.MethodGet: h}
}

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

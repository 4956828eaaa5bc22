// Package sidecar is the per-pod HTTP API app code calls on 127.0.0.1:$WARDEN_PORT: list the
// datasets it may read, check access, list a folder, stage a file into its read-only data
// directory, delete a staged copy. Every decision is audited. JSON in and out; errors are
// {"error": "...", "code": "..."} with a status that says what happened.
package sidecar

import (
	"context"
	"encoding/json"
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
	"github.com/warden-dev/warden/pkg/api"
	"github.com/warden-dev/warden/pkg/audit"
	"github.com/warden-dev/warden/pkg/grants"
	"github.com/warden-dev/warden/pkg/health"
	"github.com/warden-dev/warden/pkg/policy"
	"github.com/warden-dev/warden/pkg/stage"
)

// Config of the API server.
type Config struct {
	Owner       string
	Environment string
	Workload    api.Workload
	Grants      grants.Source
	Stager      *stage.Stager
	Callers     CallerResolver
	// Secrets is nil when no Vault is configured: the secrets endpoints answer 501.
	Secrets         SecretStore
	SecretsMaxBytes int
	// Broker forwards the identity endpoints (nil in local mode: they answer 501).
	Broker   Broker
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

	s.route("/healthz", get(health.Healthz().ServeHTTP))
	s.route("/readyz", get(cfg.Checks.Readyz().ServeHTTP))
	s.route("/metrics", get(promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{}).ServeHTTP))
	s.route("/v1/datasets", get(s.listDatasets))
	s.route("/v1/datasets/{id}/access", get(s.access))
	s.route("/v1/datasets/{id}/files", get(s.files))
	s.route("/v1/datasets/{id}/stage", map[string]http.HandlerFunc{http.MethodPost: s.stage})
	s.route("/v1/staged/{name}", map[string]http.HandlerFunc{http.MethodDelete: s.deleteStaged})
	s.route("/v1/secrets", map[string]http.HandlerFunc{http.MethodGet: s.secretsList, http.MethodPut: s.secretsPut})
	s.route("/v1/secrets/{key}", map[string]http.HandlerFunc{http.MethodGet: s.secretGet, http.MethodDelete: s.secretDelete})
	s.route("/v1/identity/orgs", get(s.identityOrgs))
	s.route("/v1/identity/gcp", map[string]http.HandlerFunc{http.MethodPost: s.identityBind, http.MethodDelete: s.identityReset})
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path))
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
					writeError(rec, http.StatusInternalServerError, "internal", "internal error")
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
			writeError(rec, http.StatusMethodNotAllowed, "method_not_allowed", fmt.Sprintf("%s %s is not supported; use %s", r.Method, pattern, strings.Join(allowed, " or ")))
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

type errorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, errorBody{Error: msg, Code: code})
}

// errStatus maps an error to a status and a stable code.
func errStatus(err error) (int, string) {
	if status, code, ok := secretStatus(err); ok {
		return status, code
	}
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return http.StatusRequestEntityTooLarge, "payload_too_large"
	case errors.Is(err, stage.ErrBadPath), errors.Is(err, stage.ErrBadRequest), errors.Is(err, stage.ErrNotRegular), errors.Is(err, errCaller), errors.Is(err, errBody):
		return http.StatusBadRequest, "bad_request"
	case errors.Is(err, errCallerToken):
		return http.StatusUnauthorized, "unauthorized"
	case errors.Is(err, errCallerScoped), errors.Is(err, stage.ErrForbidden), errors.Is(err, grants.ErrUnknownOwner), errors.Is(err, errDenied):
		return http.StatusForbidden, "forbidden"
	case errors.Is(err, stage.ErrNotFound):
		return http.StatusNotFound, "not_found"
	case errors.Is(err, stage.ErrQuota), errors.Is(err, stage.ErrNoSpace):
		return http.StatusInsufficientStorage, "insufficient_storage"
	case errors.Is(err, stage.ErrChanged):
		return http.StatusConflict, "conflict"
	case errors.Is(err, grants.ErrUnavailable):
		return http.StatusServiceUnavailable, "unavailable"
	case errors.Is(err, errNoBroker):
		return http.StatusNotImplemented, "not_implemented"
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, "timeout"
	}
	return http.StatusInternalServerError, "internal"
}

var (
	errBody   = errors.New("bad request body")
	errDenied = errors.New("access denied")
)

// decodeBody reads one JSON object, refusing unknown fields, trailing data and big bodies.
func (s *Server) decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	err := httpjson.Decode(w, r, v, s.cfg.MaxBodyBytes)
	if errors.Is(err, httpjson.ErrMalformed) {
		return fmt.Errorf("%w: %v", errBody, err)
	}
	return err
}

// request is what every dataset endpoint establishes first.
type request struct {
	caller grants.Caller
	rec    audit.Record
	ctx    context.Context
}

func (s *Server) begin(r *http.Request, action string) (request, error) {
	q := request{rec: audit.Record{Action: action, Owner: s.cfg.Owner, Dataset: r.PathValue("id")}}
	c, err := s.cfg.Callers.Caller(r)
	if err != nil {
		return q, err
	}
	q.caller = c
	q.rec.Caller = c.Name()
	if id := r.PathValue("id"); id != "" {
		if err := policy.ValidDatasetID(id); err != nil {
			return q, fmt.Errorf("%w: %v", errBody, err)
		}
	}
	return q, nil
}

// fail answers an error and audits it.
func (s *Server) fail(w http.ResponseWriter, q request, err error) {
	status, code := errStatus(err)
	// A refusal of the request (4xx) is a denial; only the sidecar's own failures are errors.
	q.rec.Outcome = audit.Denied
	if status >= 500 {
		q.rec.Outcome = audit.Failed
	}
	if q.rec.Reason == "" { // keep the grant's own reason when it refused
		q.rec.Reason = err.Error()
	}
	s.cfg.Audit.Log(q.rec)
	if status >= 500 {
		s.cfg.Log.Error("request failed", "action", q.rec.Action, "dataset", q.rec.Dataset, "error", err)
	}
	writeError(w, status, code, err.Error())
}

func (s *Server) listDatasets(w http.ResponseWriter, r *http.Request) {
	q, err := s.begin(r, audit.ActionList)
	if err != nil {
		s.fail(w, q, err)
		return
	}
	list, err := s.cfg.Grants.List(r.Context(), s.cfg.Owner, q.caller)
	if err != nil {
		s.fail(w, q, err)
		return
	}
	q.rec.Outcome, q.rec.Reason = audit.Allowed, strconv.Itoa(len(list))+" datasets"
	s.cfg.Audit.Log(q.rec)
	writeJSON(w, http.StatusOK, map[string]any{"datasets": list})
}

type accessBody struct {
	DatasetID string        `json:"dataset_id"`
	Owner     grants.Access `json:"owner"`
	Caller    grants.Access `json:"caller"`
}

func (s *Server) access(w http.ResponseWriter, r *http.Request) {
	q, err := s.begin(r, audit.ActionAccess)
	if err != nil {
		s.fail(w, q, err)
		return
	}
	d, err := s.cfg.Grants.Check(r.Context(), s.cfg.Owner, q.caller, q.rec.Dataset)
	if err != nil {
		s.fail(w, q, err)
		return
	}
	status := http.StatusOK
	q.rec.Outcome = audit.Allowed
	if !d.Allowed() {
		status, q.rec.Outcome, q.rec.Reason = http.StatusForbidden, audit.Denied, d.Reason
	}
	s.cfg.Audit.Log(q.rec)
	writeJSON(w, status, accessBody{DatasetID: d.DatasetID, Owner: d.Owner, Caller: d.Caller})
}

// authorize checks a dataset for the request's caller and resolves the snapshot directory.
func (s *Server) authorize(r *http.Request, q *request, snapshot string) (string, error) {
	d, err := s.cfg.Grants.Check(r.Context(), s.cfg.Owner, q.caller, q.rec.Dataset)
	if err != nil {
		return "", err
	}
	if !d.Allowed() {
		q.rec.Reason = d.Reason
		return "", fmt.Errorf("%w: %s may not read dataset %q on behalf of %s", errDenied, s.cfg.Owner, q.rec.Dataset, q.caller.Name())
	}
	if snapshot == "" {
		q.rec.Snapshot = d.Snapshot
		return d.Snapshot, nil
	}
	dir, ok := d.Snapshots[snapshot]
	if !ok {
		return "", fmt.Errorf("%w: dataset %q has no snapshot named %q", stage.ErrNotFound, q.rec.Dataset, snapshot)
	}
	q.rec.Snapshot = snapshot + " (" + dir + ")"
	return dir, nil
}

func (s *Server) files(w http.ResponseWriter, r *http.Request) {
	q, err := s.begin(r, audit.ActionFiles)
	if err != nil {
		s.fail(w, q, err)
		return
	}
	p := r.URL.Query().Get("path")
	q.rec.Source = p
	dir, err := s.authorize(r, &q, r.URL.Query().Get("snapshot"))
	if err != nil {
		s.fail(w, q, err)
		return
	}
	entries, truncated, err := s.cfg.Stager.List(dir, p)
	if err != nil {
		s.fail(w, q, err)
		return
	}
	q.rec.Outcome = audit.Allowed
	s.cfg.Audit.Log(q.rec)
	writeJSON(w, http.StatusOK, map[string]any{"entries": entries, "truncated": truncated})
}

// StageRequest is the body of POST /v1/datasets/{id}/stage.
type StageRequest struct {
	Path       string `json:"path"`
	TTLSeconds int64  `json:"ttl_seconds"`
	// Snapshot names one of the dataset's snapshots in the policy; empty means the head.
	Snapshot string `json:"snapshot,omitempty"`
}

// StageResponse is the 201 answer.
type StageResponse struct {
	Path      string    `json:"path"`
	Name      string    `json:"name"`
	ExpiresAt time.Time `json:"expires_at"`
	Size      int64     `json:"size"`
	SHA256    string    `json:"sha256"`
}

// maxTTLSeconds keeps ttl_seconds far from overflowing a time.Duration.
const maxTTLSeconds = 10 * 365 * 24 * 3600

func (s *Server) stage(w http.ResponseWriter, r *http.Request) {
	q, err := s.begin(r, audit.ActionStage)
	if err != nil {
		s.fail(w, q, err)
		return
	}
	var body StageRequest
	if err := s.decodeBody(w, r, &body); err != nil {
		s.fail(w, q, err)
		return
	}
	q.rec.Source, q.rec.TTL = body.Path, body.TTLSeconds
	if body.TTLSeconds < 0 || body.TTLSeconds > maxTTLSeconds {
		s.fail(w, q, fmt.Errorf("%w: ttl_seconds must be between 0 (default) and %d", errBody, maxTTLSeconds))
		return
	}
	// Path errors are reported before the grant is asked, so a malformed request costs nothing.
	if _, err := stage.CleanRelPath(body.Path, false); err != nil {
		s.fail(w, q, err)
		return
	}
	dir, err := s.authorize(r, &q, body.Snapshot)
	if err != nil {
		s.fail(w, q, err)
		return
	}
	m, err := s.cfg.Stager.Stage(r.Context(), stage.Request{
		Dataset: q.rec.Dataset, Snapshot: body.Snapshot, SnapshotDir: dir, Path: body.Path,
		Caller: q.caller.Name(), CallerDir: stage.CallerDir(s.cfg.Owner, q.caller.User),
		TTL: time.Duration(body.TTLSeconds) * time.Second,
	})
	if err != nil {
		s.fail(w, q, err)
		return
	}
	s.staged.Add(float64(m.Size))
	q.rec.Target, q.rec.TTL, q.rec.Size, q.rec.SHA256, q.rec.Outcome = m.Target, m.TTLSeconds, m.Size, m.SHA256, audit.Allowed
	s.cfg.Audit.Log(q.rec)
	writeJSON(w, http.StatusCreated, StageResponse{Path: m.AppPath, Name: m.Name, ExpiresAt: m.ExpiresAt, Size: m.Size, SHA256: m.SHA256})
}

func (s *Server) deleteStaged(w http.ResponseWriter, r *http.Request) {
	q, err := s.begin(r, audit.ActionDelete)
	if err != nil {
		s.fail(w, q, err)
		return
	}
	name := r.PathValue("name")
	q.rec.Target = name
	m, err := s.cfg.Stager.Delete(name, stage.CallerDir(s.cfg.Owner, q.caller.User))
	if err != nil {
		s.fail(w, q, err)
		return
	}
	q.rec.Dataset, q.rec.Source, q.rec.Target, q.rec.TTL, q.rec.Size, q.rec.Outcome = m.Dataset, m.Source, m.Target, m.TTLSeconds, m.Size, audit.Allowed
	s.cfg.Audit.Log(q.rec)
	w.WriteHeader(http.StatusNoContent)
}

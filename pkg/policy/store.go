package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-dev/warden/pkg/health"
)

// Store serves the current policy from a file and reloads it when the file changes. A broken
// edit never replaces a good policy: the last good one keeps being served, and the error is
// logged, counted and reported by Status until a good version arrives.
//
// Kubernetes updates a mounted ConfigMap by swapping a "..data" symlink in the directory, so the
// Store watches the directory rather than the file and compares content hashes to decide whether
// anything changed. A slow periodic re-read covers filesystems that drop inotify events.
type Store struct {
	path   string
	log    *slog.Logger
	resync time.Duration

	current atomic.Pointer[Policy]

	mu       sync.Mutex
	hash     string // of the last content parsed, good or bad
	goodHash string
	loadedAt time.Time
	lastErr  error
	changed  []chan struct{}

	reloads    *prometheus.CounterVec
	healthy    prometheus.Gauge
	lastGoodTS prometheus.Gauge
}

// StoreOption configures a Store.
type StoreOption func(*Store)

// WithResync sets how often the file is re-read even without a filesystem event (default 30s).
func WithResync(d time.Duration) StoreOption { return func(s *Store) { s.resync = d } }

// NewStore loads the policy file once. A file that is missing or broken at start is not fatal:
// the Store reports it (Current returns nil) and picks the file up when it becomes good, so a
// fixed ConfigMap heals a running webhook without a restart.
func NewStore(path string, log *slog.Logger, reg prometheus.Registerer, opts ...StoreOption) (*Store, error) {
	if path == "" {
		return nil, errors.New("policy: no file given")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	s := &Store{
		path:   abs,
		log:    log.With("policy", abs),
		resync: 30 * time.Second,
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_policy_reloads_total",
			Help: "Policy file loads by result (success, failure).",
		}, []string{"result"}),
		healthy: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "warden_policy_healthy",
			Help: "1 when the policy file on disk is the policy being served, 0 when it is broken and the last good policy is served instead.",
		}),
		lastGoodTS: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "warden_policy_last_success_timestamp_seconds",
			Help: "Unix time of the last successful policy load.",
		}),
	}
	for _, o := range opts {
		o(s)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{s.reloads, s.healthy, s.lastGoodTS} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("policy metrics: %w", err)
			}
		}
	}
	s.Reload()
	return s, nil
}

// Current returns the policy being served, or nil when no good policy was ever loaded.
func (s *Store) Current() *Policy { return s.current.Load() }

// Path is the absolute path of the policy file.
func (s *Store) Path() string { return s.path }

// Status reports whether the file on disk is what is being served. When it is not, the message
// names the file, the error, and what is served instead.
func (s *Store) Status() (ok bool, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lastErr == nil {
		return true, fmt.Sprintf("policy %s loaded at %s (sha256 %.12s)", s.path, s.loadedAt.Format(time.RFC3339), s.goodHash)
	}
	if s.current.Load() == nil {
		return false, fmt.Sprintf("policy %s is broken and no good policy was ever loaded: %v", s.path, s.lastErr)
	}
	return false, fmt.Sprintf("policy %s is broken: %v; serving the last good policy loaded at %s (sha256 %.12s)",
		s.path, s.lastErr, s.loadedAt.Format(time.RFC3339), s.goodHash)
}

// Check is the store as a readiness check: ok; degraded while a broken edit is rejected and the
// last good policy serves; failing when no good policy was ever loaded.
func (s *Store) Check() (health.State, string) {
	ok, msg := s.Status()
	switch {
	case ok:
		return health.OK, msg
	case s.Current() != nil:
		return health.Degraded, msg
	}
	return health.Failing, msg
}

// Changed returns a channel that receives after every reload attempt that saw new content.
// Tests and the sidecar use it instead of sleeping.
func (s *Store) Changed() <-chan struct{} {
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	s.changed = append(s.changed, ch)
	s.mu.Unlock()
	return ch
}

// Reload re-reads the file now. It is cheap when nothing changed (one read and one hash).
func (s *Store) Reload() {
	data, readErr := readLimited(s.path)
	sum := sha256.Sum256(data)
	hash := hex.EncodeToString(sum[:])
	if readErr != nil {
		hash = "error:" + readErr.Error()
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if hash == s.hash && s.hash != "" {
		return
	}
	s.hash = hash
	defer s.notify()

	var p *Policy
	err := readErr
	if err == nil {
		if p, err = Parse(data); err != nil {
			err = fmt.Errorf("%s: %w", s.path, err)
		}
	}
	if err != nil {
		s.lastErr = err
		s.reloads.WithLabelValues("failure").Inc()
		s.healthy.Set(0)
		if s.current.Load() != nil {
			s.log.Error("policy edit rejected; keeping the last good policy", "error", err, "last_good_sha256", s.goodHash)
		} else {
			s.log.Error("policy cannot be loaded; every admission is denied until it is fixed", "error", err)
		}
		return
	}
	s.current.Store(p)
	s.lastErr = nil
	s.goodHash = hash
	s.loadedAt = time.Now()
	s.reloads.WithLabelValues("success").Inc()
	s.healthy.Set(1)
	s.lastGoodTS.Set(float64(s.loadedAt.Unix()))
	s.log.Info("policy loaded", "sha256", hash[:12], "owners", len(p.Owners), "datasets", len(p.Datasets), "orgs", len(p.Orgs))
}

func (s *Store) notify() {
	for _, ch := range s.changed {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Run watches the file until ctx ends.
func (s *Store) Run(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("policy watcher: %w", err)
	}
	defer w.Close()
	dir := filepath.Dir(s.path)
	if err := w.Add(dir); err != nil {
		return fmt.Errorf("policy watcher: watch %s: %w", dir, err)
	}
	// A burst of events (ConfigMap swap: create, chmod, rename, remove) becomes one reload.
	const settle = 50 * time.Millisecond
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	tick := time.NewTicker(s.resync)
	defer tick.Stop()
	s.Reload() // catch changes between NewStore and now
	for {
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-w.Events:
			if !ok {
				return errors.New("policy watcher closed")
			}
			// Any entry of the directory may be the file's target (ConfigMaps swap a "..data"
			// symlink; editors rename temporary files): reload, the hash check makes it cheap.
			debounce.Reset(settle)
		case err, ok := <-w.Errors:
			if !ok {
				return errors.New("policy watcher closed")
			}
			s.log.Warn("policy watcher error; relying on periodic re-read", "error", err)
		case <-debounce.C:
			s.Reload()
		case <-tick.C:
			s.Reload()
		}
	}
}

// View is Current as a policy.View: nil (not a typed nil) when no policy was ever loaded.
func (s *Store) View() View {
	if p := s.Current(); p != nil {
		return p
	}
	return nil
}

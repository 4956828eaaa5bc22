// Package app assembles the webhook process: the policy store, the admission chain
// (pkg/admission) on controller-runtime's TLS webhook server, the broker API on its own TLS
// listener, and the operations endpoints (/healthz, /readyz, /metrics). cmd/webhook only turns
// flags into Options.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/warden-dev/warden/pkg/admission"
	"github.com/warden-dev/warden/pkg/admission/mutate"
	"github.com/warden-dev/warden/pkg/admission/scope"
	"github.com/warden-dev/warden/pkg/cloudstorage"
	"github.com/warden-dev/warden/pkg/guard"
	"github.com/warden-dev/warden/pkg/health"
	"github.com/warden-dev/warden/pkg/identity"
	"github.com/warden-dev/warden/pkg/policy"
	"github.com/warden-dev/warden/pkg/secrets"
)

// Options configure the webhook process.
type Options struct {
	RestConfig *rest.Config
	// PolicyFile is the policy file, hot-reloaded ("" for none: the policy is the objects only).
	PolicyFile string
	// NoPolicyObjects turns the policy objects (Owner, Dataset, Group, Org) off: the file alone.
	NoPolicyObjects bool
	// GCPProject is the workload identity pool's project when the policy file names none.
	GCPProject string
	// Host and Port of the admission TLS listener; CertDir holds tls.crt and tls.key, which are
	// reloaded when they change (cert-manager or the certs/ script rotating them).
	Host    string
	Port    int
	CertDir string
	// HealthAddr serves /healthz, /readyz and /metrics over plain HTTP ("" disables it).
	HealthAddr string
	// BrokerAddr serves the broker API over TLS with the same certificate ("" disables it).
	BrokerAddr string
	// BrokerGrants is GrantsPolicy (reader lists in the policy, the default) or GrantsRBAC
	// (SubjectAccessReviews on datasets.warden.dev).
	BrokerGrants string
	// AcceptTokens lets the broker accept projected service-account tokens from sidecars
	// besides pod certificates, while pods injected in token identity run. Token identity
	// (Mutate.SidecarIdentity) accepts them whatever this says.
	AcceptTokens bool
	// GCP enables workload-identity binding through the broker (nil: off).
	GCP *GCPOptions
	// Storage enables Cloud Storage credentials for the policy's spaces through the broker
	// (nil: off). Registerer and Log are the server's own.
	Storage *cloudstorage.Options
	// OwnerSecrets lets people manage owners' secrets from outside their pods through the
	// broker, which logs in to Vault with this (Path: the owners' path template; nil: off).
	OwnerSecrets *secrets.Config
	// AdminGroup may change org mappings in PolicyConfigMap (in Namespace, default
	// DefaultPolicyConfigMap) through the broker.
	AdminGroup      string
	PolicyConfigMap string
	// Namespace is the webhook's own namespace; it is never injected.
	Namespace string
	// StatusKeySecret names the Secret in Namespace with the keys that seal injections
	// (default DefaultStatusKeySecret; created on first start).
	StatusKeySecret string
	Mutate          mutate.Config
	Log             *slog.Logger
	// Registry receives Warden's metrics; /metrics serves it together with controller-runtime's.
	Registry *prometheus.Registry
}

// GCPOptions configure the identity binder.
type GCPOptions struct {
	// IAM is the IAM admin API; nil dials Google with Application Default Credentials.
	IAM         identity.IAM
	Propagation time.Duration
	Resync      time.Duration
}

// Server is a ready-to-start webhook process.
type Server struct {
	opts  Options
	kube  kubernetes.Interface
	keys  *guard.Keyring
	rules *guard.Rules
	log   *slog.Logger
	mgr   ctrl.Manager
	// policy is the file's store (nil without a file); source is the policy in force.
	policy       *policy.Store
	source       policySource
	policySynced atomic.Bool
	checks       *health.Checks
	health       net.Listener
	broker       net.Listener
	bh           http.Handler
}

// preflight asks the API server for the kinds the manager's cache will watch, before it is
// built: building it already needs their REST mappings, and a missing one fails with a message
// that says neither what is missing nor the way out.
func preflight(d discovery.DiscoveryInterface, opts Options) error {
	if !opts.NoPolicyObjects {
		if err := servesPolicyObjects(d); err != nil {
			return err
		}
	}
	if opts.signs() {
		return servesPodCertificates(d)
	}
	return nil
}

// New builds the server: it loads the policy, binds the health listener and prepares the
// controller-runtime manager, but serves nothing until Start.
func New(opts Options) (*Server, error) {
	if opts.RestConfig == nil {
		return nil, errors.New("webhook: no Kubernetes client configuration")
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Registry == nil {
		// Go and process metrics come from controller-runtime's registry, served alongside.
		opts.Registry = prometheus.NewRegistry()
	}
	// The one place these defaults are applied (cmd/webhook's flags default to "").
	if opts.StatusKeySecret == "" {
		opts.StatusKeySecret = DefaultStatusKeySecret
	}
	if opts.PolicyConfigMap == "" {
		opts.PolicyConfigMap = DefaultPolicyConfigMap
	}
	log := opts.Log
	ctrl.SetLogger(logr.FromSlogHandler(log.Handler()))

	if opts.PolicyFile == "" && opts.NoPolicyObjects {
		return nil, errors.New("webhook: no policy: give a policy file, or keep the policy objects on")
	}
	var store *policy.Store
	if opts.PolicyFile != "" {
		var err error
		if store, err = policy.NewStore(opts.PolicyFile, log, opts.Registry); err != nil {
			return nil, err
		}
	}

	kube, err := kubernetes.NewForConfig(opts.RestConfig)
	if err != nil {
		return nil, err
	}
	if err := preflight(kube.Discovery(), opts); err != nil {
		return nil, err
	}
	mgr, err := newManager(opts)
	if err != nil {
		return nil, err
	}
	s := &Server{opts: opts, log: log, mgr: mgr, policy: store, checks: &health.Checks{}}
	if err := s.setupPolicy(); err != nil {
		return nil, err
	}

	keys, err := loadKeys(kube, opts.Namespace, opts.StatusKeySecret)
	if err != nil {
		return nil, err
	}

	if opts.CertDir != "" {
		if err := opts.Registry.Register(certExpiry(opts.CertDir)); err != nil {
			return nil, err
		}
	}
	s.kube, s.keys = kube, keys
	if err := s.setupAdmission(); err != nil {
		return nil, err
	}
	s.addChecks()
	if opts.HealthAddr != "" {
		if s.health, err = net.Listen("tcp", opts.HealthAddr); err != nil {
			return nil, fmt.Errorf("webhook: health listener: %w", err)
		}
	}
	if opts.BrokerAddr != "" {
		if err := s.setupBroker(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// setupAdmission registers the admission chain on the manager's webhook server.
func (s *Server) setupAdmission() error {
	// One invariant for the whole process: both admission handlers and the broker.
	s.rules = s.opts.Mutate.Rules(s.keys)
	if s.opts.Mutate.SnapshotVolume.PersistentVolumeClaim != nil {
		var err error
		if s.rules.Shares, err = newShareBacking(s.mgr.GetCache()); err != nil {
			return err
		}
	}
	chain, err := admission.Chain(admission.Options{
		Config: s.opts.Mutate, Namespace: s.opts.Namespace, Policy: s.source,
		Namespaces: namespaceLabels{s.mgr.GetCache()}, Rules: s.rules,
		Log: s.log, Metrics: scope.NewMetrics(s.opts.Registry),
	})
	if err != nil {
		return err
	}
	for _, w := range chain {
		s.mgr.GetWebhookServer().Register(w.Path, w.Handler)
	}
	return nil
}

// HealthAddr is the bound address of the health listener (useful with port 0).
func (s *Server) HealthAddr() string {
	if s.health == nil {
		return ""
	}
	return s.health.Addr().String()
}

// PodRules is the pod invariant this webhook enforces, with its status keys (for tests that
// assemble their own broker).
func (s *Server) PodRules() *guard.Rules { return s.rules }

// Policy is the policy file's store (nil without a file; for tests).
func (s *Server) Policy() *policy.Store { return s.policy }

// PolicyView is the policy in force (nil until it can be read).
func (s *Server) PolicyView() policy.View { return s.source.View() }

// Start serves until ctx ends.
func (s *Server) Start(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 4)
	if s.policy != nil {
		go func() { errc <- s.policy.Run(ctx) }()
	}
	go refreshStatusKeys(ctx, s.kube, s.opts.Namespace, s.opts.StatusKeySecret, s.keys, s.log)
	s.serveHealth(ctx, errc)
	if s.broker != nil {
		if err := s.serveBroker(ctx, errc); err != nil {
			return err
		}
	}
	go func() { errc <- s.mgr.Start(ctx) }()
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			err = errors.New("webhook: a component stopped")
		}
		return err
	}
}

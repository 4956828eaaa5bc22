// Package webhook assembles the webhook process: the policy store, the pod admission handler on
// controller-runtime's TLS webhook server, the broker API on its own TLS listener, and the
// operations endpoints (/healthz, /readyz, /metrics). cmd/webhook only turns flags into Options.
package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/warden-dev/warden/internal/serve"
	"github.com/warden-dev/warden/pkg/broker"
	"github.com/warden-dev/warden/pkg/grants"
	"github.com/warden-dev/warden/pkg/guard"
	"github.com/warden-dev/warden/pkg/health"
	"github.com/warden-dev/warden/pkg/identity"
	"github.com/warden-dev/warden/pkg/mutate"
	"github.com/warden-dev/warden/pkg/policy"
)

// Where the admission handlers are served.
const (
	MutatePath   = "/mutate-v1-pod"
	ValidatePath = "/validate-v1-pod"
)

// Options configure the webhook process.
type Options struct {
	RestConfig *rest.Config
	PolicyFile string
	// Host and Port of the admission TLS listener; CertDir holds tls.crt and tls.key, which are
	// reloaded when they change (cert-manager or the certs/ script rotating them).
	Host    string
	Port    int
	CertDir string
	// HealthAddr serves /healthz, /readyz and /metrics over plain HTTP ("" disables it).
	HealthAddr string
	// BrokerAddr serves the broker API over TLS with the same certificate ("" disables it).
	BrokerAddr string
	// BrokerGrants is "policy" (reader lists in the policy file, the default) or "rbac"
	// (SubjectAccessReviews on datasets.warden.dev).
	BrokerGrants string
	// GCP enables workload-identity binding through the broker (nil: off).
	GCP *GCPOptions
	// AdminGroup may change org mappings in PolicyConfigMap (in Namespace) through the broker.
	AdminGroup      string
	PolicyConfigMap string
	// Namespace is the webhook's own namespace; it is never injected.
	Namespace string
	// StatusKeySecret names the Secret in Namespace with the keys that seal injections
	// (default DefaultStatusKeySecret; created on first start).
	StatusKeySecret string
	Mutate    mutate.Config
	Log       *slog.Logger
	// Registry receives Warden's metrics; /metrics serves it together with controller-runtime's.
	Registry *prometheus.Registry
}

// Server is a ready-to-start webhook process.
// GCPOptions configure the identity binder.
type GCPOptions struct {
	// IAM is the IAM admin API; nil dials Google with Application Default Credentials.
	IAM         identity.IAM
	Propagation time.Duration
	Resync      time.Duration
}

type Server struct {
	opts   Options
	kube   kubernetes.Interface
	keys   *guard.Keyring
	log    *slog.Logger
	mgr    ctrl.Manager
	policy *policy.Store
	checks *health.Checks
	health net.Listener
	broker net.Listener
	bh     http.Handler
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
	log := opts.Log
	ctrl.SetLogger(logr.FromSlogHandler(log.Handler()))

	store, err := policy.NewStore(opts.PolicyFile, log, opts.Registry)
	if err != nil {
		return nil, err
	}

	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	mgrOpts := ctrl.Options{
		Scheme:                 scheme,
		Logger:                 logr.FromSlogHandler(log.Handler()),
		Metrics:                metricsserver.Options{BindAddress: "0"}, // served on HealthAddr instead
		HealthProbeBindAddress: "0",
		WebhookServer: ctrlwebhook.NewServer(ctrlwebhook.Options{
			Host:    opts.Host,
			Port:    opts.Port,
			CertDir: opts.CertDir,
			TLSOpts: []func(*tls.Config){func(c *tls.Config) {
				c.MinVersion = tls.VersionTLS12
				// HTTP/2 is off: the API server does not need it, and it has a history of
				// resource-exhaustion bugs (CVE-2023-44487) on exposed listeners.
				c.NextProtos = []string{"http/1.1"}
			}},
		}),
	}
	if opts.GCP != nil {
		// The identity reconciler watches pods cluster-wide, reduced to the few fields it reads,
		// and runs on one replica at a time.
		mgrOpts.Cache = cache.Options{ByObject: map[client.Object]cache.ByObject{&corev1.Pod{}: {Transform: identity.StripPod}}}
		mgrOpts.LeaderElection = true
		mgrOpts.LeaderElectionID = "warden-identity-reconciler"
		mgrOpts.LeaderElectionNamespace = opts.Namespace
		mgrOpts.LeaderElectionReleaseOnCancel = true
	}
	mgr, err := ctrl.NewManager(opts.RestConfig, mgrOpts)
	if err != nil {
		return nil, fmt.Errorf("webhook: manager: %w", err)
	}

	kube, err := kubernetes.NewForConfig(opts.RestConfig)
	if err != nil {
		return nil, err
	}
	if opts.StatusKeySecret == "" {
		opts.StatusKeySecret = DefaultStatusKeySecret
	}
	kctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	keyData, err := statusKeys(kctx, kube, opts.Namespace, opts.StatusKeySecret, true)
	cancel()
	if err != nil {
		return nil, err
	}
	keys, err := guard.NewKeyring(keyData)
	if err != nil {
		return nil, fmt.Errorf("webhook: Secret %s/%s: %w", opts.Namespace, opts.StatusKeySecret, err)
	}

	metrics := mutate.NewMetrics(opts.Registry)
	namespaces := namespaceLabels{mgr.GetCache()}
	h, err := mutate.NewHandler(opts.Mutate, opts.Namespace, store, namespaces, keys, log, metrics)
	if err != nil {
		return nil, err
	}
	v, err := mutate.NewValidator(opts.Mutate, opts.Namespace, namespaces, keys, log, metrics)
	if err != nil {
		return nil, err
	}
	mgr.GetWebhookServer().Register(MutatePath, &ReviewHandler{Handler: h, Log: log})
	mgr.GetWebhookServer().Register(ValidatePath, &ReviewHandler{Handler: v, Log: log})

	s := &Server{opts: opts, kube: kube, keys: keys, log: log, mgr: mgr, policy: store, checks: &health.Checks{}}
	s.checks.Add("policy", store.Check)
	started := mgr.GetWebhookServer().StartedChecker()
	s.checks.Add("admission-tls", func() (health.State, string) {
		if err := started(nil); err != nil {
			return health.Failing, err.Error()
		}
		return health.OK, "serving " + MutatePath + " and " + ValidatePath
	})
	s.checks.Add("namespace-cache", func() (health.State, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if !mgr.GetCache().WaitForCacheSync(ctx) {
			return health.Failing, "namespace cache not synced yet"
		}
		return health.OK, "synced"
	})
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

func (s *Server) setupBroker() error {
	kube := s.kube
	engine := grants.NewPolicyEngine(s.policy.Current)
	switch s.opts.BrokerGrants {
	case "", "policy":
	case "rbac":
		engine.Authz = &broker.RBACAuthorizer{SAR: kube.AuthorizationV1().SubjectAccessReviews(), TTL: 10 * time.Second}
	default:
		return fmt.Errorf("webhook: broker grants %q is not policy or rbac", s.opts.BrokerGrants)
	}
	bo := broker.Options{
		Kube: kube, Grants: engine, Log: s.log.With("component", "broker"), AdminGroup: s.opts.AdminGroup,
		// The broker trusts a pod only as far as the admission webhooks would: opted-in
		// namespace, and the same invariant, seal included.
		Pods: s.opts.Mutate.Rules(s.keys), Namespaces: namespaceLabels{s.mgr.GetCache()},
	}
	if s.opts.AdminGroup != "" {
		cm := s.opts.PolicyConfigMap
		if cm == "" {
			cm = "warden-policy"
		}
		bo.OrgAdmin = &identity.OrgAdmin{Kube: kube, Namespace: s.opts.Namespace, ConfigMap: cm}
	}
	if g := s.opts.GCP; g != nil {
		if g.IAM == nil {
			return errors.New("webhook: GCP identity needs an IAM client")
		}
		bo.Identity = &identity.Binder{
			Policies:    &identity.Policies{IAM: g.IAM},
			Records:     &identity.Records{Kube: kube, Namespace: s.opts.Namespace},
			Kube:        kube,
			Policy:      s.policy.Current,
			Propagation: g.Propagation,
			Log:         s.log.With("component", "identity"),
		}
		rec := &identity.Reconciler{Binder: bo.Identity, Resync: g.Resync, Log: s.log.With("component", "identity-reconciler")}
		if err := rec.SetupWithManager(context.Background(), s.mgr); err != nil {
			return fmt.Errorf("webhook: identity reconciler: %w", err)
		}
	}
	b, err := broker.New(bo)
	if err != nil {
		return err
	}
	s.bh = b
	if s.broker, err = net.Listen("tcp", s.opts.BrokerAddr); err != nil {
		return fmt.Errorf("webhook: broker listener: %w", err)
	}
	return nil
}

// BrokerAddr is the bound address of the broker listener.
func (s *Server) BrokerAddr() string {
	if s.broker == nil {
		return ""
	}
	return s.broker.Addr().String()
}

// serveBroker serves the broker over TLS, reloading the certificate like the webhook does.
func (s *Server) serveBroker(ctx context.Context, errc chan<- error) error {
	cw, err := certwatcher.New(filepath.Join(s.opts.CertDir, "tls.crt"), filepath.Join(s.opts.CertDir, "tls.key"))
	if err != nil {
		return fmt.Errorf("webhook: broker certificate: %w", err)
	}
	go func() {
		if err := cw.Start(ctx); err != nil {
			s.log.Error("broker certificate watcher", "error", err)
		}
	}()
	srv := &http.Server{
		Handler:           s.bh,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	tl := tls.NewListener(s.broker, &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"http/1.1"},
		GetCertificate: cw.GetCertificate,
	})
	go func() {
		if err := serve.Until(ctx, srv, tl); err != nil {
			errc <- err
		}
	}()
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
func (s *Server) PodRules() *guard.Rules { return s.opts.Mutate.Rules(s.keys) }

// Policy is the policy store (for the broker and tests).
func (s *Server) Policy() *policy.Store { return s.policy }

// Start serves until ctx ends.
func (s *Server) Start(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 4)
	go func() { errc <- s.policy.Run(ctx) }()
	go refreshStatusKeys(ctx, s.kube, s.opts.Namespace, s.opts.StatusKeySecret, s.keys, s.log)
	if s.health != nil {
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

// namespaceLabels reads namespace labels through the manager's cache. Asking for metadata only
// makes the cache keep a metadata informer, so the webhook never holds full Namespace objects.
type namespaceLabels struct{ r client.Reader }

func (n namespaceLabels) Labels(ctx context.Context, name string) (map[string]string, error) {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
	if err := n.r.Get(ctx, client.ObjectKey{Name: name}, m); err != nil {
		return nil, err
	}
	return m.Labels, nil
}

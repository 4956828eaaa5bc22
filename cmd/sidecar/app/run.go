// Package app assembles the sidecar process: grants (the broker or a local policy file), the
// stager, Vault secrets, caller proof, metrics and the loopback listener around pkg/sidecar's
// HTTP API. cmd/sidecar only turns flags into Options.
package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/warden-dev/warden/internal/serve"
	"github.com/warden-dev/warden/pkg/audit"
	"github.com/warden-dev/warden/pkg/brokerapi"
	"github.com/warden-dev/warden/pkg/contract"
	"github.com/warden-dev/warden/pkg/grants"
	"github.com/warden-dev/warden/pkg/health"
	"github.com/warden-dev/warden/pkg/policy"
	"github.com/warden-dev/warden/pkg/secrets"
	"github.com/warden-dev/warden/pkg/sidecar"
	"github.com/warden-dev/warden/pkg/stage"
	"github.com/warden-dev/warden/pkg/version"
)

// Options is the sidecar process configuration (cmd/sidecar fills it from flags).
type Options struct {
	Listen string
	// MetricsListen, when set, serves the registry's /metrics alone there (the pod IP, for
	// Prometheus), apart from the API, which trusts its caller and stays on loopback.
	MetricsListen string
	Owner         string
	Environment   string
	Workload      contract.Workload
	DataDir       string

	SnapshotRoot, StagingRoot, StateDir string
	DefaultTTL, MaxTTL                  time.Duration
	QuotaBytes                          int64
	AllowHardlinks                      bool
	// NoSync publishes copies without waiting for the disk (stage.Config.NoSync).
	NoSync bool

	// Grants come from PolicyFile (local mode) or from BrokerURL, the sidecar proving its pod
	// with CertFile (its pod certificate) or, without one, TokenFile.
	PolicyFile    string
	BrokerURL     string
	BrokerCA      string // file path or PEM
	CertFile      string
	TokenFile     string
	GrantCacheTTL time.Duration
	GrantStaleFor time.Duration

	// Caller proof: when CallerJWKS is set, callers are proven by JWTs.
	CallerJWKS, CallerIssuer, CallerAudience, CallerClaim, CallerGroupsClaim string

	// Vault: secrets are enabled when VaultAddr is set.
	VaultAddr, VaultRole, VaultAuthPath, VaultMount, VaultPath string
	VaultCACert, VaultNamespace, VaultTokenFile                string
	VaultCacheTTL                                              time.Duration
	SecretsMaxBytes                                            int

	AuditLog       string // file; "" is stdout
	RequestTimeout time.Duration
	Pod, PodUID    string
	Log            *slog.Logger
}

// Run serves until ctx ends. ready, when not nil, receives the bound address once serving.
func Run(ctx context.Context, o Options, ready chan<- string) error {
	log := o.Log
	if log == nil {
		log = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	log = log.With("owner", o.Owner)
	auditOut, closeAudit, err := openAudit(o.AuditLog)
	if err != nil {
		return err
	}
	defer closeAudit()
	auditLog := audit.New(auditOut, o.Pod, o.PodUID)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	checks := &health.Checks{}

	stager, err := stage.New(stage.Config{
		SnapshotRoot: o.SnapshotRoot, StagingRoot: o.StagingRoot, StateDir: o.StateDir,
		Owner: o.Owner, Environment: o.Environment, Workload: o.Workload, DataDir: o.DataDir,
		DefaultTTL: o.DefaultTTL, MaxTTL: o.MaxTTL, QuotaBytes: o.QuotaBytes, AllowHardlinks: o.AllowHardlinks,
		NoSync: o.NoSync,
	}, auditLog, log)
	if err != nil {
		return err
	}
	source, broker, err := grantSource(ctx, o, log, reg, checks)
	if err != nil {
		return err
	}
	callers, err := callerResolver(ctx, o)
	if err != nil {
		return err
	}
	var store sidecar.SecretStore
	if o.VaultAddr != "" {
		sec, err := openSecrets(ctx, o, log)
		if err != nil {
			return err
		}
		defer revoke(sec, log)
		store = sec
		checks.Add("vault", func() (health.State, string) {
			if sec.Accessor() == "" {
				return health.Degraded, "not logged in to " + o.VaultAddr + " yet"
			}
			return health.OK, "logged in to " + o.VaultAddr
		})
	}
	cfg := sidecar.Config{
		Owner: o.Owner, Environment: o.Environment, Workload: o.Workload,
		Grants: source, Stager: stager, Callers: callers, Audit: auditLog, Log: log,
		Checks: checks, Registry: reg, RequestTimeout: o.RequestTimeout,
		Secrets: store, SecretsMaxBytes: o.SecretsMaxBytes, Broker: broker,
	}
	if client, ok := broker.(*brokerapi.Client); ok {
		cfg.Storage = client
	}
	srv, err := sidecar.New(cfg)
	if err != nil {
		return err
	}
	checks.Add("staging", func() (health.State, string) {
		b, n := stager.Usage()
		return health.OK, fmt.Sprintf("%d copies, %d bytes staged", n, b)
	})

	// Metrics are for the operator; the API is the pod's. A port taken (a non-native sidecar
	// starts beside the app, which may have bound it first) costs the metrics, not the pod.
	metrics, err := listenMetrics(o.MetricsListen, reg, log)
	if err != nil {
		log.Error("no metrics listener; the API serves without it", "listen", o.MetricsListen, "error", err)
	}
	return listenAndServe(ctx, o, srv, stager, metrics, log, ready)
}

// listenAndServe serves the API on o.Listen (and metrics, when not nil), and runs the stager's
// janitor, until ctx ends.
func listenAndServe(ctx context.Context, o Options, h http.Handler, stager *stage.Stager, metrics *metricsServer, log *slog.Logger, ready chan<- string) error {
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return err
	}
	trim := newIdleTrim()
	hs := &http.Server{
		Handler:           trim.wrap(h),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		// The clients are processes in this pod on loopback, where a new connection costs tens
		// of microseconds; an idle one holds buffers and a goroutine, so it is not kept long.
		IdleTimeout:    30 * time.Second,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go stager.Run(ctx)
	go trim.run(ctx)
	if metrics != nil {
		go func() {
			if err := metrics.run(ctx); err != nil {
				log.Error("metrics listener", "error", err)
			}
		}()
	}
	log.Info("warden sidecar serving", "version", version.Version, "listen", ln.Addr().String(),
		"environment", o.Environment, "workload", o.Workload, "grants", grantMode(o))
	if ready != nil {
		ready <- ln.Addr().String()
	}
	return serve.Until(ctx, hs, ln)
}

// openAudit opens the audit log (stdout for "" or "-"); the returned func closes it.
func openAudit(file string) (io.Writer, func(), error) {
	if file == "" || file == "-" {
		return os.Stdout, func() {}, nil
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("audit log: %w", err)
	}
	return f, func() { f.Close() }, nil
}

// revoke revokes the Vault token on the way out (SIGTERM), with a deadline of its own.
func revoke(sec *secrets.Store, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := sec.Close(ctx); err != nil {
		log.Warn("revoking the vault token", "error", err)
	}
}

func openSecrets(ctx context.Context, o Options, log *slog.Logger) (*secrets.Store, error) {
	tmpl := o.VaultPath
	if tmpl == "" {
		tmpl = secrets.DefaultPath
	}
	path, err := secrets.PathFor(tmpl, o.Owner)
	if err != nil {
		return nil, fmt.Errorf("--vault-path: %w", err)
	}
	role := o.VaultRole
	if role == "" {
		role = secrets.DefaultRole(o.Owner)
	}
	tokenFile := o.VaultTokenFile
	if tokenFile == "" {
		tokenFile = o.TokenFile
	}
	return secrets.New(ctx, secrets.Config{
		Addr: o.VaultAddr, Role: role, AuthPath: o.VaultAuthPath, Mount: o.VaultMount, Path: path,
		TokenFile: tokenFile, CACert: o.VaultCACert, Namespace: o.VaultNamespace,
		CacheTTL: o.VaultCacheTTL, MaxBytes: o.SecretsMaxBytes, Log: log.With("component", "vault"),
	})
}

func grantMode(o Options) string {
	if o.PolicyFile != "" {
		return "local policy " + o.PolicyFile
	}
	return "broker " + o.BrokerURL
}

// grantSource returns the grant source, and the broker client when there is a broker.
func grantSource(ctx context.Context, o Options, log *slog.Logger, reg prometheus.Registerer, checks *health.Checks) (grants.Source, sidecar.Broker, error) {
	switch {
	case o.PolicyFile != "" && o.BrokerURL != "":
		return nil, nil, errors.New("give either --policy (local mode) or --broker-url, not both")
	case o.PolicyFile != "":
		store, err := policy.NewStore(o.PolicyFile, log, reg)
		if err != nil {
			return nil, nil, err
		}
		go func() {
			if err := store.Run(ctx); err != nil {
				log.Error("policy watcher stopped", "error", err)
			}
		}()
		checks.Add("policy", store.Check)
		return grants.NewPolicyEngine(store.View), nil, nil
	case o.BrokerURL != "":
		if !strings.HasPrefix(o.BrokerURL, "https://") {
			return nil, nil, fmt.Errorf("--broker-url %q must be https: the sidecar sends its credentials", o.BrokerURL)
		}
		tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if o.BrokerCA != "" {
			pem := []byte(o.BrokerCA)
			if !strings.HasPrefix(strings.TrimSpace(o.BrokerCA), "-----BEGIN") {
				var err error
				if pem, err = os.ReadFile(o.BrokerCA); err != nil {
					return nil, nil, fmt.Errorf("--broker-ca: %w", err)
				}
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, nil, errors.New("--broker-ca holds no PEM certificate")
			}
			tlsCfg.RootCAs = pool
		}
		token := o.TokenFile
		if o.CertFile != "" {
			// The pod certificate is the sidecar's identity; the token (if any) is Vault's.
			tlsCfg.GetClientCertificate = (&brokerapi.ClientCertificate{File: o.CertFile}).Get
			token = ""
		} else if token == "" {
			return nil, nil, errors.New("--broker-url needs --cert-file (the pod certificate) or --token-file")
		}
		client := &brokerapi.Client{
			BaseURL:   o.BrokerURL,
			TokenFile: token,
			// Each call has its own deadline (brokerapi.DefaultTimeout, longer for commits).
			HTTP: &http.Client{Transport: &http.Transport{
				TLSClientConfig: tlsCfg, MaxIdleConnsPerHost: 4, IdleConnTimeout: time.Minute,
			}},
		}
		checks.Add("broker", func() (health.State, string) { return health.OK, o.BrokerURL })
		return &grants.Cached{Source: client, TTL: o.GrantCacheTTL, StaleFor: o.GrantStaleFor}, client, nil
	}
	return nil, nil, errors.New("no grant source: give --policy FILE (local mode) or --broker-url URL with --cert-file or --token-file")
}

func callerResolver(ctx context.Context, o Options) (sidecar.CallerResolver, error) {
	workspace := o.Workload == contract.WorkloadWorkspace
	if o.CallerJWKS == "" {
		return sidecar.HeaderCallers{Owner: o.Owner, Workspace: workspace}, nil
	}
	if o.CallerIssuer == "" || o.CallerAudience == "" {
		return nil, errors.New("--caller-jwks needs --caller-issuer and --caller-audience")
	}
	keys, err := sidecar.NewKeySet(ctx, o.CallerJWKS, nil)
	if err != nil {
		return nil, err
	}
	return &sidecar.JWTCallers{Owner: o.Owner, Workspace: workspace, Issuer: o.CallerIssuer, Audience: o.CallerAudience,
		UserClaim: o.CallerClaim, GroupsClaim: o.CallerGroupsClaim, Keys: keys}, nil
}

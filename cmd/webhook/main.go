// Command webhook is Warden's mutating admission webhook (and, later, its broker). Flags fall
// back to WARDEN_* environment variables; see README.md for the full list.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/yaml"

	"github.com/warden-dev/warden/internal/flagenv"
	"github.com/warden-dev/warden/pkg/identity"
	"github.com/warden-dev/warden/pkg/mutate"
	"github.com/warden-dev/warden/pkg/version"
	"github.com/warden-dev/warden/pkg/webhook"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "warden-webhook:", err)
		os.Exit(1)
	}
}

func run() error {
	def := mutate.DefaultConfig()
	fs := flag.CommandLine // controller-runtime registers --kubeconfig here
	var (
		policyFile   = fs.String("policy", "/etc/warden/policy.yaml", "policy file (YAML), hot-reloaded")
		certDir      = fs.String("cert-dir", "/etc/warden/tls", "directory with tls.crt and tls.key, reloaded on rotation")
		listen       = fs.String("listen", ":9443", "admission webhook TLS listen address")
		healthListen = fs.String("health-listen", ":8081", "plain-HTTP address for /healthz, /readyz and /metrics")
		brokerListen = fs.String("broker-listen", ":8443", "broker API TLS listen address (\"\" disables the broker)")
		brokerGrants = fs.String("broker-grants", "policy", "where the broker reads dataset grants: policy (reader lists) or rbac (SubjectAccessReview on datasets.warden.dev)")
		brokerCA     = fs.String("broker-ca-file", "", "CA that sidecars use to verify the broker (default: ca.crt in --cert-dir, when present)")
		namespace    = fs.String("namespace", "warden-system", "the webhook's own namespace (never injected)")
		exempt       = fs.String("exempt-namespaces", "", "comma-separated namespaces never injected, in addition to kube-system, kube-public, kube-node-lease and --namespace")
		image        = fs.String("sidecar-image", def.SidecarImage, "sidecar image")
		pullPolicy   = fs.String("sidecar-image-pull-policy", string(def.SidecarImagePullPolicy), "sidecar imagePullPolicy")
		port         = fs.Int("sidecar-port", int(def.SidecarPort), "loopback port of the sidecar (WARDEN_PORT)")
		native       = fs.Bool("native-sidecar", def.NativeSidecar, "inject the sidecar as a native sidecar (init container with restartPolicy Always); false for clusters older than 1.29")
		cpuReq       = fs.String("sidecar-cpu-request", def.SidecarResources.Requests.Cpu().String(), "sidecar CPU request")
		memReq       = fs.String("sidecar-memory-request", def.SidecarResources.Requests.Memory().String(), "sidecar memory request")
		cpuLim       = fs.String("sidecar-cpu-limit", def.SidecarResources.Limits.Cpu().String(), "sidecar CPU limit")
		memLim       = fs.String("sidecar-memory-limit", def.SidecarResources.Limits.Memory().String(), "sidecar memory limit")
		staging      = fs.String("staging-volume", `{"emptyDir":{}}`, "volume source (JSON or YAML) of the staging area")
		snapshots    = fs.String("snapshot-volume", `{"persistentVolumeClaim":{"claimName":"warden-snapshots","readOnly":true}}`, "volume source (JSON or YAML) of the dataset snapshot share")
		hostPaths    = fs.String("allow-host-path", "", "comma-separated host path prefixes that pods in opted-in namespaces may mount (default none: hostPath volumes are refused)")
		inlineVols   = fs.String("allow-inline-volumes", "", "comma-separated in-tree volume types (e.g. nfs) pods in opted-in namespaces may use inline (default none)")
		keySecret    = fs.String("status-key-secret", webhook.DefaultStatusKeySecret, "Secret in --namespace with the keys that seal warden.dev/status (created on first start)")
		tokenTTL     = fs.Int64("token-expiration-seconds", def.TokenExpirationSeconds, "lifetime of the sidecar's projected token (>= 600)")
		brokerURL    = fs.String("broker-url", "https://warden-webhook.warden-system.svc:8443", "https URL of the broker, passed to injected sidecars (\"\" for none)")
		vaultAddr    = fs.String("vault-addr", "", "Vault address given to injected sidecars, enabling their secrets endpoints")
		gcpIdentity  = fs.Bool("gcp-identity", false, "bind GKE workload identity for sidecars (the broker's own identity needs iam.serviceAccounts.getIamPolicy/setIamPolicy on the orgs' GCP service accounts)")
		gcpEndpoint  = fs.String("gcp-iam-endpoint", "", "IAM admin API endpoint (default Google's)")
		gcpInsecure  = fs.Bool("gcp-iam-insecure", false, "talk to --gcp-iam-endpoint without TLS or credentials (local fakes only)")
		gcpPropagate = fs.Duration("gcp-propagation", 7*time.Minute, "how long an IAM change takes to propagate; bindings answer state pending until then")
		gcpResync    = fs.Duration("identity-resync", 10*time.Minute, "how often the reconciler re-checks every binding Warden made")
		adminGroup   = fs.String("admin-group", "", "group whose members may change org mappings through the broker (empty: nobody)")
		policyCM     = fs.String("policy-configmap", "warden-policy", "ConfigMap (in --namespace) holding the policy, edited by org-mapping changes")
		logLevel     = fs.String("log-level", "info", "debug, info, warn or error")
		showVersion  = fs.Bool("version", false, "print the version and exit")
	)
	flag.Parse()
	if err := flagenv.Apply(fs, "WARDEN_"); err != nil {
		return err
	}
	if *showVersion {
		fmt.Println(version.Version)
		return nil
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	cfg := def
	cfg.SidecarImage = *image
	cfg.SidecarImagePullPolicy = corev1.PullPolicy(*pullPolicy)
	cfg.SidecarPort = int32(*port)
	cfg.NativeSidecar = *native
	cfg.TokenExpirationSeconds = *tokenTTL
	cfg.BrokerURL = *brokerURL
	cfg.VaultAddr = *vaultAddr
	caFile := *brokerCA
	if caFile == "" {
		caFile = filepath.Join(*certDir, "ca.crt")
	}
	if ca, err := os.ReadFile(caFile); err == nil {
		cfg.BrokerCA = string(ca)
	} else if *brokerCA != "" {
		return fmt.Errorf("--broker-ca-file: %w", err)
	}
	for _, q := range []struct {
		flag, val string
		list      corev1.ResourceList
		name      corev1.ResourceName
	}{
		{"sidecar-cpu-request", *cpuReq, cfg.SidecarResources.Requests, corev1.ResourceCPU},
		{"sidecar-memory-request", *memReq, cfg.SidecarResources.Requests, corev1.ResourceMemory},
		{"sidecar-cpu-limit", *cpuLim, cfg.SidecarResources.Limits, corev1.ResourceCPU},
		{"sidecar-memory-limit", *memLim, cfg.SidecarResources.Limits, corev1.ResourceMemory},
	} {
		v, err := resource.ParseQuantity(q.val)
		if err != nil {
			return fmt.Errorf("--%s: %w", q.flag, err)
		}
		q.list[q.name] = v
	}
	var err error
	if cfg.StagingVolume, err = parseVolume(*staging); err != nil {
		return fmt.Errorf("--staging-volume: %w", err)
	}
	if cfg.SnapshotVolume, err = parseVolume(*snapshots); err != nil {
		return fmt.Errorf("--snapshot-volume: %w", err)
	}
	cfg.ExemptNamespaces = splitList(*exempt)
	cfg.HostPathAllow = splitList(*hostPaths)
	cfg.InlineVolumeAllow = splitList(*inlineVols)
	host, portStr, err := splitHostPort(*listen)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	restCfg, err := ctrl.GetConfig()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var gcp *webhook.GCPOptions
	if *gcpIdentity {
		iam, err := identity.NewIAMClient(ctx, *gcpEndpoint, *gcpInsecure)
		if err != nil {
			return fmt.Errorf("--gcp-identity: %w", err)
		}
		defer iam.Close()
		gcp = &webhook.GCPOptions{IAM: iam, Propagation: *gcpPropagate, Resync: *gcpResync}
	}
	srv, err := webhook.New(webhook.Options{
		RestConfig:      restCfg,
		PolicyFile:      *policyFile,
		Host:            host,
		Port:            portStr,
		CertDir:         *certDir,
		HealthAddr:      *healthListen,
		BrokerAddr:      *brokerListen,
		BrokerGrants:    *brokerGrants,
		GCP:             gcp,
		AdminGroup:      *adminGroup,
		PolicyConfigMap: *policyCM,
		Namespace:       *namespace,
		StatusKeySecret: *keySecret,
		Mutate:          cfg,
		Log:             log,
	})
	if err != nil {
		return err
	}
	log.Info("warden webhook starting", "version", version.Version, "listen", *listen, "health", srv.HealthAddr(), "policy", *policyFile)
	return srv.Start(ctx)
}

// splitList reads a comma-separated flag.
func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// parseVolume reads a VolumeSource given as JSON or YAML, refusing unknown fields.
func parseVolume(s string) (corev1.VolumeSource, error) {
	var v corev1.VolumeSource
	err := yaml.UnmarshalStrict([]byte(s), &v)
	return v, err
}

func splitHostPort(addr string) (string, int, error) {
	host, ps, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	p, err := strconv.Atoi(ps)
	if err != nil || p < 1 || p > 65535 {
		return "", 0, fmt.Errorf("%q has no valid port", addr)
	}
	return host, p, nil
}

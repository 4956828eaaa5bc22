package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"

	webhookapp "github.com/warden-dev/warden/cmd/webhook/app"
	"github.com/warden-dev/warden/pkg/admission/mutate"
	"github.com/warden-dev/warden/pkg/cloudstorage"
	"github.com/warden-dev/warden/pkg/contract"
	"github.com/warden-dev/warden/pkg/policy"
	"github.com/warden-dev/warden/pkg/secrets"
)

// options are the command line; serverOptions turns them into the server's options. Every
// default comes from the package that owns it (mutate.DefaultConfig, cmd/webhook/app's constants).
type options struct {
	policyFile, certDir, gcpProject       string
	policyObjects                         bool
	listen, healthListen, brokerListen    string
	brokerGrants, brokerCA, brokerURL     string
	namespace, exempt, keySecret          string
	image, pullPolicy                     string
	port, metricsPort                     int
	native                                bool
	cpuRequest, memRequest                string
	cpuLimit, memLimit                    string
	staging, snapshots                    string
	hostPaths, inlineVolumes              string
	tokenTTL                              int64
	identity                              string
	certLifetime                          time.Duration
	acceptTokens                          bool
	vaultAddr                             string
	gcpIdentity, gcpInsecure              bool
	gcpEndpoint                           string
	gcpPropagation, gcpResync             time.Duration
	adminGroup, policyConfigMap, logLevel string
	version                               bool
	storage                               storageFlags
	vault                                 vaultFlags
}

// storageFlags configure Cloud Storage credentials (--storage and the --storage-* flags).
// vaultFlags are the broker's own Vault login, for owners' secrets from outside their pods.
type vaultFlags struct {
	role, tokenFile, authPath, mount, path, caCert string
}

func (f vaultFlags) options(addr string) (*secrets.Config, error) {
	if f.role == "" {
		return nil, nil
	}
	var errs []error
	if addr == "" {
		errs = append(errs, errors.New("--broker-vault-role needs --vault-addr"))
	}
	if f.tokenFile == "" {
		errs = append(errs, errors.New("--broker-vault-role needs --broker-vault-token-file"))
	}
	if err := secrets.ValidOwnersTemplate(f.path); err != nil {
		errs = append(errs, fmt.Errorf("--vault-path: %w", err))
	}
	return &secrets.Config{Addr: addr, Role: f.role, AuthPath: f.authPath, Mount: f.mount, Path: f.path,
		TokenFile: f.tokenFile, CACert: f.caCert}, errors.Join(errs...)
}

type storageFlags struct {
	enabled                       bool
	readTTL, uploadTTL, deleteTTL time.Duration
	buffer                        time.Duration
	maxCommit                     int
	deleteRole                    string
	credentials, sts, gcs, pubsub string
	insecure                      bool
}

func (o *options) addFlags(fs *flag.FlagSet) {
	def := mutate.DefaultConfig()
	fs.StringVar(&o.policyFile, "policy", "/etc/warden/policy.yaml", "policy file (YAML), hot-reloaded (\"\" for none: the policy objects alone)")
	fs.BoolVar(&o.policyObjects, "policy-objects", true, "read the policy objects (Owner, Dataset, Group, Org in warden.dev) too; the file wins where both define a name")
	fs.StringVar(&o.gcpProject, "gcp-project", "", "GCP project of the workload identity pool when the policy file names none")
	fs.StringVar(&o.certDir, "cert-dir", "/etc/warden/tls", "directory with tls.crt and tls.key, reloaded on rotation")
	fs.StringVar(&o.listen, "listen", ":9443", "admission webhook TLS listen address")
	fs.StringVar(&o.healthListen, "health-listen", ":8081", "plain-HTTP address for /healthz, /readyz and /metrics")
	fs.StringVar(&o.brokerListen, "broker-listen", ":8443", "broker API TLS listen address (\"\" disables the broker)")
	fs.StringVar(&o.brokerGrants, "broker-grants", webhookapp.GrantsPolicy, fmt.Sprintf("where the broker reads dataset grants: %s (reader lists) or %s (SubjectAccessReview on datasets.warden.dev)", webhookapp.GrantsPolicy, webhookapp.GrantsRBAC))
	fs.StringVar(&o.brokerCA, "broker-ca-file", "", "CA that sidecars use to verify the broker (default: ca.crt in --cert-dir, when present)")
	fs.StringVar(&o.brokerURL, "broker-url", "https://warden-webhook.warden-system.svc:8443", "https URL of the broker, passed to injected sidecars (\"\" for none)")
	fs.StringVar(&o.namespace, "namespace", "warden-system", "the webhook's own namespace (never injected)")
	fs.StringVar(&o.exempt, "exempt-namespaces", "", "comma-separated namespaces never injected, in addition to kube-system, kube-public, kube-node-lease and --namespace")
	fs.StringVar(&o.keySecret, "status-key-secret", "", "Secret in --namespace with the keys that seal warden.dev/status, created on first start (default "+webhookapp.DefaultStatusKeySecret+")")
	fs.StringVar(&o.image, "sidecar-image", def.SidecarImage, "sidecar image")
	fs.StringVar(&o.pullPolicy, "sidecar-image-pull-policy", string(def.SidecarImagePullPolicy), "sidecar imagePullPolicy: Always, IfNotPresent or Never")
	fs.IntVar(&o.port, "sidecar-port", int(def.SidecarPort), "loopback port of the sidecar (WARDEN_PORT)")
	fs.IntVar(&o.metricsPort, "sidecar-metrics-port", 0, "port on the pod IP where each sidecar serves /metrics alone, for Prometheus (container port "+contract.PortMetrics+"; 0: off, everything on loopback)")
	fs.BoolVar(&o.native, "native-sidecar", def.NativeSidecar, "inject the sidecar as a native sidecar (init container with restartPolicy Always); false for clusters older than 1.29")
	fs.StringVar(&o.cpuRequest, "sidecar-cpu-request", def.SidecarResources.Requests.Cpu().String(), "sidecar CPU request")
	fs.StringVar(&o.memRequest, "sidecar-memory-request", def.SidecarResources.Requests.Memory().String(), "sidecar memory request")
	fs.StringVar(&o.cpuLimit, "sidecar-cpu-limit", def.SidecarResources.Limits.Cpu().String(), "sidecar CPU limit")
	fs.StringVar(&o.memLimit, "sidecar-memory-limit", def.SidecarResources.Limits.Memory().String(), "sidecar memory limit")
	fs.StringVar(&o.staging, "staging-volume", mustJSON(def.StagingVolume), "volume source (JSON or YAML) of the staging area; per pod: emptyDir or ephemeral")
	fs.StringVar(&o.snapshots, "snapshot-volume", mustJSON(def.SnapshotVolume), "volume source (JSON or YAML) of the dataset snapshot share")
	fs.StringVar(&o.hostPaths, "allow-host-path", "", "comma-separated host path prefixes that pods in opted-in namespaces may mount (default none: hostPath volumes are refused)")
	fs.StringVar(&o.inlineVolumes, "allow-inline-volumes", "", "comma-separated in-tree volume types (e.g. nfs) pods in opted-in namespaces may use inline (default none)")
	fs.Int64Var(&o.tokenTTL, "token-expiration-seconds", def.TokenExpirationSeconds, "lifetime of the sidecar's projected token for Vault, and for the broker in token identity (>= 600)")
	fs.StringVar(&o.identity, "sidecar-identity", def.SidecarIdentity, "how sidecars prove their pod to the broker: pod-certificate (issued by Warden's signer warden.dev/sidecar, requested by the kubelet only) or token (a projected token, for clusters without pod certificates; tenants with the edit role can mint such tokens)")
	fs.DurationVar(&o.certLifetime, "sidecar-certificate-lifetime", time.Duration(def.CertificateSeconds)*time.Second, "lifetime of sidecar certificates (1h to 2184h; the kubelet renews them at half of it)")
	fs.BoolVar(&o.acceptTokens, "broker-accept-tokens", false, "with --sidecar-identity=pod-certificate, still accept projected tokens (while pods injected in token identity run)")
	fs.StringVar(&o.vaultAddr, "vault-addr", "", "Vault address given to injected sidecars, enabling their secrets endpoints")
	fs.StringVar(&o.vault.role, "broker-vault-role", "", "Vault role the broker logs in with to serve owners' secrets to people outside their pods (\"\": off; docs/secrets.md)")
	fs.StringVar(&o.vault.tokenFile, "broker-vault-token-file", "/var/run/secrets/warden/vault/token", "the broker's projected service-account token for its Vault login")
	fs.StringVar(&o.vault.authPath, "vault-auth-path", "kubernetes", "mount of Vault's Kubernetes auth method (the broker's login)")
	fs.StringVar(&o.vault.mount, "vault-mount", "secret", "KV v2 mount holding owners' secrets (the broker's; sidecars default to the same)")
	fs.StringVar(&o.vault.path, "vault-path", secrets.DefaultPath, "owners' entries under the mount, {namespace} and {owner} filled in (the broker's; sidecars default to the same)")
	fs.StringVar(&o.vault.caCert, "vault-ca-cert", "", "PEM file to verify Vault with (the broker's login)")
	fs.BoolVar(&o.gcpIdentity, "gcp-identity", false, "bind GKE workload identity for sidecars (the broker's own identity needs iam.serviceAccounts.getIamPolicy/setIamPolicy on the orgs' GCP service accounts)")
	fs.StringVar(&o.gcpEndpoint, "gcp-iam-endpoint", "", "IAM admin API endpoint (default Google's)")
	fs.BoolVar(&o.gcpInsecure, "gcp-iam-insecure", false, "talk to --gcp-iam-endpoint without TLS or credentials (local fakes only)")
	fs.DurationVar(&o.gcpPropagation, "gcp-propagation", 7*time.Minute, "how long an IAM change takes to propagate; bindings answer state pending until then")
	fs.DurationVar(&o.gcpResync, "identity-resync", 10*time.Minute, "how often the reconciler re-checks every binding Warden made")
	fs.BoolVar(&o.storage.enabled, "storage", false, "hand out short-lived Cloud Storage credentials for the policy's spaces (the broker's identity needs roles/iam.serviceAccountTokenCreator on the orgs' GCP service accounts)")
	fs.DurationVar(&o.storage.readTTL, "storage-read-ttl", cloudstorage.DefaultLifetimes[policy.AccessRead], "lifetime of read credentials and GET signed URLs (at most 1h)")
	fs.DurationVar(&o.storage.uploadTTL, "storage-upload-ttl", cloudstorage.DefaultLifetimes[policy.AccessUpload], "lifetime of upload credentials and PUT signed URLs (at most 1h)")
	fs.DurationVar(&o.storage.deleteTTL, "storage-delete-ttl", cloudstorage.DefaultLifetimes[policy.AccessDelete], "lifetime of delete credentials and DELETE signed URLs (at most 1h)")
	fs.StringVar(&o.storage.deleteRole, "storage-delete-role", cloudstorage.DefaultDeleteRole, "role delete credentials' access boundaries make available: the predefined roles/storage.objectUser, or a custom role (projects/P/roles/NAME, organizations/ID/roles/NAME) with exactly storage.objects.list, get, create and delete (docs/cloud-storage.md)")
	fs.DurationVar(&o.storage.buffer, "storage-cache-buffer", cloudstorage.DefaultBuffer, "a cached credential is handed out only while more than this is left; below, a new one is minted")
	fs.IntVar(&o.storage.maxCommit, "storage-max-commit-objects", cloudstorage.DefaultMaxCommitObjects, "most objects one commit lists and announces")
	fs.StringVar(&o.storage.credentials, "gcp-credentials-endpoint", "", "IAM Credentials API endpoint (default Google's)")
	fs.StringVar(&o.storage.sts, "gcp-sts-endpoint", "", "STS token URL for downscoping (default https://sts.googleapis.com/v1/token)")
	fs.StringVar(&o.storage.gcs, "gcp-storage-endpoint", "", "Cloud Storage JSON API endpoint, e.g. http://HOST:PORT/storage/v1/; signed URLs name its host (default Google's)")
	fs.StringVar(&o.storage.pubsub, "gcp-pubsub-endpoint", "", "Pub/Sub endpoint for commit notifications (default Google's)")
	fs.BoolVar(&o.storage.insecure, "gcp-storage-insecure", false, "talk to --gcp-credentials-endpoint and --gcp-pubsub-endpoint without TLS or credentials (local fakes and emulators only)")
	fs.StringVar(&o.adminGroup, "admin-group", "", "group whose members may change org mappings through the broker (empty: nobody)")
	fs.StringVar(&o.policyConfigMap, "policy-configmap", "", "ConfigMap (in --namespace) holding the policy, edited by org-mapping changes (default "+webhookapp.DefaultPolicyConfigMap+")")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
}

// serverOptions validates the flags and builds the server's options (all but the Kubernetes
// client and the IAM client, which need the network). Every mistake is reported at once.
func (o *options) serverOptions() (webhookapp.Options, error) {
	var errs []error
	bad := func(flag string, err error) { errs = append(errs, fmt.Errorf("--%s: %w", flag, err)) }
	cfg, err := o.mutateConfig(bad)
	if err != nil {
		errs = append(errs, err)
	}
	host, port, err := splitHostPort(o.listen)
	if err != nil {
		bad("listen", err)
	}
	if err := webhookapp.ValidGrants(o.brokerGrants); err != nil {
		bad("broker-grants", err)
	}
	log, err := logger(o.logLevel)
	if err != nil {
		errs = append(errs, err)
	}
	so, err := o.storage.options()
	if err != nil {
		errs = append(errs, err)
	}
	vo, err := o.vault.options(o.vaultAddr)
	if err != nil {
		errs = append(errs, err)
	}
	return webhookapp.Options{
		Storage:         so,
		OwnerSecrets:    vo,
		PolicyFile:      o.policyFile,
		NoPolicyObjects: !o.policyObjects,
		GCPProject:      o.gcpProject,
		Host:            host,
		Port:            port,
		CertDir:         o.certDir,
		HealthAddr:      o.healthListen,
		BrokerAddr:      o.brokerListen,
		BrokerGrants:    o.brokerGrants,
		AcceptTokens:    o.acceptTokens, // token identity implies it (webhookapp.Options)
		AdminGroup:      o.adminGroup,
		PolicyConfigMap: o.policyConfigMap,
		Namespace:       o.namespace,
		StatusKeySecret: o.keySecret,
		Mutate:          cfg,
		Log:             log,
	}, errors.Join(errs...)
}

// mutateConfig is what the webhook injects, from the flags: a flag's mistakes go to bad, the
// configuration's own (mutate.Config.Validate) are returned.
func (o *options) mutateConfig(bad func(flag string, err error)) (mutate.Config, error) {
	cfg := mutate.DefaultConfig()
	cfg.SidecarImage = o.image
	cfg.SidecarPort = int32(o.port)
	cfg.SidecarMetricsPort = int32(o.metricsPort)
	cfg.NativeSidecar = o.native
	cfg.TokenExpirationSeconds = o.tokenTTL
	cfg.SidecarIdentity = o.identity
	if o.certLifetime%time.Second != 0 || o.certLifetime < time.Hour || o.certLifetime > 2184*time.Hour {
		bad("sidecar-certificate-lifetime", fmt.Errorf("%s is not whole seconds from 1h to 2184h", o.certLifetime))
	} else {
		cfg.CertificateSeconds = int32(o.certLifetime / time.Second)
	}
	cfg.BrokerURL = o.brokerURL
	cfg.VaultAddr = o.vaultAddr
	cfg.ExemptNamespaces = splitList(o.exempt)
	cfg.HostPathAllow = splitList(o.hostPaths)
	cfg.InlineVolumeAllow = splitList(o.inlineVolumes)
	switch p := corev1.PullPolicy(o.pullPolicy); p {
	case corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
		cfg.SidecarImagePullPolicy = p
	default:
		bad("sidecar-image-pull-policy", fmt.Errorf("%q is not Always, IfNotPresent or Never", o.pullPolicy))
	}
	for _, q := range []struct {
		flag, val string
		list      corev1.ResourceList
		name      corev1.ResourceName
	}{
		{"sidecar-cpu-request", o.cpuRequest, cfg.SidecarResources.Requests, corev1.ResourceCPU},
		{"sidecar-memory-request", o.memRequest, cfg.SidecarResources.Requests, corev1.ResourceMemory},
		{"sidecar-cpu-limit", o.cpuLimit, cfg.SidecarResources.Limits, corev1.ResourceCPU},
		{"sidecar-memory-limit", o.memLimit, cfg.SidecarResources.Limits, corev1.ResourceMemory},
	} {
		v, err := resource.ParseQuantity(q.val)
		if err != nil {
			bad(q.flag, err)
			continue
		}
		q.list[q.name] = v
	}
	var err error
	if cfg.StagingVolume, err = parseVolume(o.staging); err != nil {
		bad("staging-volume", err)
	}
	if cfg.SnapshotVolume, err = parseVolume(o.snapshots); err != nil {
		bad("snapshot-volume", err)
	}
	caFile := o.brokerCA
	if caFile == "" {
		caFile = filepath.Join(o.certDir, "ca.crt")
	}
	if ca, err := os.ReadFile(caFile); err == nil {
		cfg.BrokerCA = string(ca)
	} else if o.brokerCA != "" {
		bad("broker-ca-file", err)
	}
	return cfg, cfg.Validate()
}

// options are the storage service's options but its IAM Credentials client (nil when off).
func (f storageFlags) options() (*cloudstorage.Options, error) {
	if !f.enabled {
		return nil, nil
	}
	var errs []error
	lt, err := cloudstorage.Lifetimes(map[policy.Access]time.Duration{
		policy.AccessRead: f.readTTL, policy.AccessUpload: f.uploadTTL, policy.AccessDelete: f.deleteTTL,
	}, f.buffer)
	if err != nil {
		errs = append(errs, fmt.Errorf("--storage-*-ttl, --storage-cache-buffer: %w", err))
	}
	if f.maxCommit < 1 {
		errs = append(errs, errors.New("--storage-max-commit-objects must be at least 1"))
	}
	if err := cloudstorage.ValidRole(f.deleteRole); err != nil {
		errs = append(errs, fmt.Errorf("--storage-delete-role: %w", err))
	}
	o := &cloudstorage.Options{
		Lifetimes: lt, Buffer: f.buffer, MaxCommitObjects: f.maxCommit, DeleteRole: f.deleteRole,
		Downscoper: cloudstorage.STS{Endpoint: f.sts},
		Lister:     cloudstorage.GCS{Endpoint: f.gcs},
		Publisher:  cloudstorage.PubSub{Endpoint: f.pubsub, Insecure: f.insecure},
	}
	if f.sts != "" {
		if u, err := url.Parse(f.sts); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs = append(errs, fmt.Errorf("--gcp-sts-endpoint %q is not an http(s) URL", f.sts))
		}
	}
	if f.gcs != "" {
		u, err := url.Parse(f.gcs)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs = append(errs, fmt.Errorf("--gcp-storage-endpoint %q is not an http(s) URL", f.gcs))
		} else {
			o.SignedURLHost, o.SignedURLInsecure = u.Host, u.Scheme == "http"
		}
	}
	return o, errors.Join(errs...)
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

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
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

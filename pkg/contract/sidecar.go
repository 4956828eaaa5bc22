package contract

// Keys on Kubernetes objects besides pods (docs/contract.md, docs/policy-objects.md).
const (
	// AnnotationSnapshotRoot on a Namespace is the directory of the dataset share its Datasets
	// live under (relative to the share's root; "." for all of it). Only cluster admins can edit
	// namespaces, so dataset owners decide readers, never where the data comes from; a Dataset
	// in a namespace without it is never accepted.
	AnnotationSnapshotRoot = Prefix + "snapshot-root"
	// AnnotationDatasetIDs on a Namespace, set by a cluster admin, lists the dataset ids its
	// Datasets may take: ids and prefixes ending in "*", separated by commas ("finance-*,ledger").
	// Ids are unique in the cluster and the oldest acceptable Dataset holds one, so without it
	// a namespace with a snapshot root may take any id first, including one another team means
	// to publish.
	AnnotationDatasetIDs = Prefix + "dataset-ids"
	// LabelIdentityRecord marks the ConfigMaps in the webhook's namespace that record the
	// workload-identity bindings Warden made (value: the record's kind).
	LabelIdentityRecord = Prefix + "identity-record"
)

// The sidecar's command line as the webhook injects it. cmd/sidecar defines these flags and
// the webhook writes them, so they are a contract between versions: during an upgrade an older
// webhook's pods run a newer sidecar image and the reverse.
const (
	// SidecarCommand is the sidecar binary in its image; SidecarProbe its probe subcommand (the
	// liveness probe and the postStart hook, since kubelet HTTP probes cannot reach loopback).
	SidecarCommand = "/warden-sidecar"
	SidecarProbe   = "probe"

	FlagListen       = "listen"
	FlagOwner        = "owner"
	FlagEnvironment  = "environment"
	FlagWorkload     = "workload"
	FlagSnapshotRoot = "snapshot-root"
	FlagStagingRoot  = "staging-root"
	FlagStateDir     = "state-dir"
	FlagCertFile     = "cert-file"
	FlagTokenFile    = "token-file"
	FlagBrokerURL    = "broker-url"
	FlagBrokerCA     = "broker-ca"
	FlagVaultAddr    = "vault-addr"
	FlagPodName      = "pod-name"
	FlagPodUID       = "pod-uid"
	// FlagSyncCopies (default true) waits for the disk before a staged copy is visible; the
	// webhook turns it off for native sidecars, which are ready before any app container starts
	// (pkg/stage/publish.go), through EnvSyncCopies so that an older sidecar image ignores it.
	FlagSyncCopies = "sync-copies"
	// FlagProbeWait is the probe subcommand's: keep trying for this long.
	FlagProbeWait = "wait"
	// FlagMetricsListen is where the sidecar serves its /metrics (and nothing else) for
	// Prometheus, off the loopback: the webhook sets it through EnvMetricsListen (an older
	// sidecar image ignores it) with --sidecar-metrics-port, and names the port PortMetrics.
	FlagMetricsListen = "metrics-listen"
	PortMetrics       = "warden-metrics"
)

// Environment variables. Every flag of Warden's binaries can also be set as EnvPrefix plus the
// flag's name in upper case with dashes as underscores (internal/flagenv); the webhook sets
// the sidecar's pod name, pod UID and broker CA that way.
const (
	EnvPrefix = "WARDEN_"
	// EnvPodName, EnvPodUID and EnvBrokerCA are FlagPodName, FlagPodUID and FlagBrokerCA.
	EnvPodName  = EnvPrefix + "POD_NAME"
	EnvPodUID   = EnvPrefix + "POD_UID"
	EnvBrokerCA = EnvPrefix + "BROKER_CA"
	// EnvSyncCopies is FlagSyncCopies.
	EnvSyncCopies = EnvPrefix + "SYNC_COPIES"
	// EnvMetricsListen is FlagMetricsListen.
	EnvMetricsListen = EnvPrefix + "METRICS_LISTEN"
	// EnvBrokerURL is the CLI's --broker, where it reaches the broker from outside a pod.
	EnvBrokerURL = EnvPrefix + "BROKER_URL"
)

// Flag is "--name=value", as the webhook writes the sidecar's arguments.
func Flag(name, value string) string { return "--" + name + "=" + value }

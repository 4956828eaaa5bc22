// Package contract holds Warden's user-facing contract in one place: the labels and annotations
// users and admins write, the names Warden gives to what it injects, and the typed per-pod
// configuration parsed from them. Everything here is documented in docs/contract.md; a
// change here is a change to what users depend on.
package contract

import (
	"fmt"
	"path"
	"strings"
)

const (
	// Prefix is the domain of every Warden label and annotation.
	Prefix = "warden.dev/"

	// LabelInject on a Namespace opts it in: pods created there go through Warden.
	LabelInject = Prefix + "inject"
	// LabelInjectEnabled is the only value of LabelInject that opts a namespace in.
	LabelInjectEnabled = "enabled"

	// LabelWorkload on a Pod picks the mount layout (see Workload). Default WorkloadApp.
	LabelWorkload = Prefix + "workload"

	// AnnotationStatus is written by the webhook only: JSON Status describing what it injected.
	// A pod that carries it is never injected again.
	AnnotationStatus = Prefix + "status"
)

// Names of what the webhook adds to a pod. A user pod that already uses one of them is refused,
// so the names double as a reserved namespace inside the pod spec.
const (
	SidecarName        = "warden-sidecar"
	VolumeStaging      = "warden-staging"
	VolumeSnapshots    = "warden-snapshots"
	VolumeToken        = "warden-token"
	VolumeState        = "warden-state"
	EnvPort            = "WARDEN_PORT"
	EnvDataDir         = "WARDEN_DATA_DIR"
	ReservedNamePrefix = "warden-"
)

// Paths inside the pod.
const (
	// DataDir is where app containers read staged copies (read-only).
	DataDir = "/secure/datasets/data"
	// SidecarStagingRoot is the sidecar's read-write view of the staging volume.
	SidecarStagingRoot = "/warden/staging"
	// SidecarSnapshotRoot is the sidecar's read-only view of the dataset snapshot share.
	SidecarSnapshotRoot = "/warden/snapshots"
	// SidecarStateDir holds staging metadata; only the sidecar mounts it.
	SidecarStateDir = "/warden/state"
	// SidecarTokenDir holds the sidecar's credentials: its pod certificate (key and chain in one
	// PEM file) and the projected service-account token with audience TokenAudience.
	SidecarTokenDir  = "/var/run/secrets/warden.dev/serviceaccount"
	SidecarTokenFile = SidecarTokenDir + "/token"
	SidecarCertFile  = SidecarTokenDir + "/credentials.pem"
)

const (
	// TokenAudience is the audience of the projected token the sidecar presents to the broker.
	TokenAudience = "warden"
	// SignerName is Warden's pod-certificate signer: the broker issues the sidecar's client
	// certificate (the podCertificate projected volume source) only for pods that pass the
	// invariant, and only the kubelet can request one.
	SignerName = "warden.dev/sidecar"
	// DefaultSidecarPort is the loopback port the sidecar listens on (WARDEN_PORT).
	DefaultSidecarPort = 8787
)

// Workload is the value of LabelWorkload.
type Workload string

const (
	// WorkloadApp serves many callers: the app sees {env}/{owner}, one folder per caller.
	WorkloadApp Workload = "app"
	// WorkloadWorkspace is a person's interactive pod: the app sees only the owner's own folder.
	WorkloadWorkspace Workload = "workspace"
	// WorkloadJob is a batch pod: same layout as an app.
	WorkloadJob Workload = "job"
)

// PodConfig is the typed form of the labels and annotations a user puts on a pod.
type PodConfig struct {
	Workload Workload
}

// ParsePodConfig reads the user-facing labels of a pod. Unknown values are errors rather than
// defaults, so a typo never silently yields a wider mount than the user asked for.
func ParsePodConfig(labels map[string]string) (PodConfig, error) {
	cfg := PodConfig{Workload: WorkloadApp}
	if v, ok := labels[LabelWorkload]; ok {
		switch w := Workload(v); w {
		case WorkloadApp, WorkloadWorkspace, WorkloadJob:
			cfg.Workload = w
		default:
			return cfg, fmt.Errorf("label %s=%q is not one of app, workspace, job", LabelWorkload, v)
		}
	}
	return cfg, nil
}

// Status is the JSON in AnnotationStatus.
type Status struct {
	Version     string   `json:"version"`
	Owner       string   `json:"owner"`
	Environment string   `json:"environment"`
	Workload    Workload `json:"workload"`
	Sidecar     string   `json:"sidecar"`
	Image       string   `json:"image"`
	Native      bool     `json:"nativeSidecar"`
	Volumes     []string `json:"volumes"`
	// Containers lists the app containers that got the data mount at injection (informational:
	// it is not sealed, containers another webhook adds later get the mount too).
	Containers []string `json:"containers"`
	// MAC seals the status, the sidecar container and Warden's volumes with a key only the
	// webhook replicas hold, so any Warden version can tell its own injections from forgeries
	// (see pkg/guard).
	MAC string `json:"mac,omitempty"`
}

// AppSubPath is the part of the staging volume an app container sees: the owner's folder for
// apps and jobs (one folder per caller inside), only the owner's own caller folder for
// workspaces.
func AppSubPath(env, owner string, w Workload) string {
	dir := OwnerDir(owner)
	if w == WorkloadWorkspace {
		return path.Join(env, dir, dir)
	}
	return path.Join(env, dir)
}

// OwnerDir is the path-safe name of an owner ("ns/sa" -> "ns.sa"). Namespaces cannot contain
// dots, so the first dot is always the separator and the mapping is one-to-one.
func OwnerDir(owner string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '/':
			return '.'
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '.', r == '_':
			return r
		default:
			return '_'
		}
	}, owner)
}

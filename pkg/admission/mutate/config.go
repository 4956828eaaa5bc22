package mutate

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/warden-dev/warden/pkg/contract"
	"github.com/warden-dev/warden/pkg/guard"
)

// Config is what the webhook injects. The zero value is not usable; start from DefaultConfig.
type Config struct {
	// SidecarImage is the warden-sidecar image.
	SidecarImage           string
	SidecarImagePullPolicy corev1.PullPolicy
	// SidecarPort is the loopback port the sidecar listens on (WARDEN_PORT).
	SidecarPort int32
	// SidecarMetricsPort, when not 0, is where each sidecar also serves /metrics (and nothing
	// else) on the pod IP, as container port contract.PortMetrics, for Prometheus (a
	// PodMonitor: manifests/monitoring). 0 keeps everything on loopback.
	SidecarMetricsPort int32
	// NativeSidecar injects the sidecar as an init container with restartPolicy Always
	// (Kubernetes >= 1.29). When false it is a regular container, for older clusters.
	NativeSidecar bool
	// SidecarResources are the sidecar's requests and limits.
	SidecarResources corev1.ResourceRequirements
	// SidecarUID is the user (and group) the sidecar runs as.
	SidecarUID int64

	// StagingVolume backs the staging area shared by sidecar (read-write) and app (read-only).
	// It must be per pod (emptyDir or a generic ephemeral volume): the sidecar's start-up
	// recovery removes copies it has no metadata for, which on a shared volume would be another
	// pod's live copies, and a shared volume would show one pod's copies to another.
	StagingVolume corev1.VolumeSource
	// SnapshotVolume is the dataset snapshot share, mounted read-only into the sidecar only.
	SnapshotVolume corev1.VolumeSource
	// SidecarIdentity is how the sidecar proves its pod to the broker: IdentityPodCertificate
	// (the default: a certificate from Warden's signer that only the kubelet can request) or
	// IdentityToken (a projected service-account token, for clusters without pod certificates;
	// weaker, since tenants with the edit role can mint such tokens).
	SidecarIdentity string
	// CertificateSeconds is the lifetime of sidecar certificates (>= 3600, the Kubernetes
	// minimum); the kubelet renews them at half of it.
	CertificateSeconds int32
	// TokenExpirationSeconds of the projected token the sidecar shows the broker in token
	// identity, and Vault in either (>= 600).
	TokenExpirationSeconds int64
	// BrokerURL, when set, is passed to the sidecar as --broker-url.
	BrokerURL string
	// BrokerCA (PEM) is given to the sidecar to verify the broker (WARDEN_BROKER_CA).
	BrokerCA string
	// VaultAddr, when set, enables the sidecar's secrets endpoints (--vault-addr).
	VaultAddr string

	// HostPathAllow lists host path prefixes user volumes may mount (none by default).
	HostPathAllow []string
	// InlineVolumeAllow lists in-tree network volume types (such as "nfs") user volumes may use.
	InlineVolumeAllow []string

	// ExemptNamespaces are never touched, whatever their labels. The system namespaces and the
	// webhook's own namespace are always exempt.
	ExemptNamespaces []string
}

// Sidecar identities (Config.SidecarIdentity).
const (
	IdentityPodCertificate = "pod-certificate"
	IdentityToken          = "token"
)

// DefaultConfig returns a configuration that works on a current cluster once the snapshot share
// is available as a PersistentVolumeClaim named "warden-snapshots" in each opted-in namespace.
func DefaultConfig() Config {
	return Config{
		SidecarImage:           "ghcr.io/warden-dev/warden-sidecar:latest",
		SidecarImagePullPolicy: corev1.PullIfNotPresent,
		SidecarPort:            contract.DefaultSidecarPort,
		NativeSidecar:          true,
		SidecarResources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse("10m"),
				corev1.ResourceMemory: resource.MustParse("32Mi"),
			},
			Limits: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse("1"),
				corev1.ResourceMemory: resource.MustParse("128Mi"),
			},
		},
		SidecarUID:    65532,
		StagingVolume: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}},
		SnapshotVolume: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{
			ClaimName: "warden-snapshots", ReadOnly: true,
		}},
		SidecarIdentity:        IdentityPodCertificate,
		CertificateSeconds:     3600,
		TokenExpirationSeconds: 600,
	}
}

// Validate reports configuration mistakes before the webhook serves anything.
func (c *Config) Validate() error {
	var errs []error
	if c.SidecarImage == "" {
		errs = append(errs, errors.New("sidecar image is empty"))
	}
	if c.SidecarPort < 1 || c.SidecarPort > 65535 {
		errs = append(errs, fmt.Errorf("sidecar port %d out of range", c.SidecarPort))
	}
	if c.SidecarMetricsPort < 0 || c.SidecarMetricsPort > 65535 {
		errs = append(errs, fmt.Errorf("sidecar metrics port %d out of range (0: off)", c.SidecarMetricsPort))
	} else if c.SidecarMetricsPort == c.SidecarPort {
		errs = append(errs, fmt.Errorf("sidecar metrics port %d is the sidecar's API port", c.SidecarMetricsPort))
	}
	switch c.SidecarIdentity {
	case IdentityPodCertificate:
		if c.CertificateSeconds < 3600 || c.CertificateSeconds > 7862400 {
			errs = append(errs, fmt.Errorf("certificate lifetime %ds is outside Kubernetes' 3600s to 7862400s", c.CertificateSeconds))
		}
	case IdentityToken:
	default:
		errs = append(errs, fmt.Errorf("sidecar identity %q is not %s or %s", c.SidecarIdentity, IdentityPodCertificate, IdentityToken))
	}
	if c.TokenExpirationSeconds < 600 {
		errs = append(errs, fmt.Errorf("token expiration %ds is below the Kubernetes minimum of 600s", c.TokenExpirationSeconds))
	}
	if countSources(c.StagingVolume) != 1 {
		errs = append(errs, errors.New("staging volume must set exactly one volume source"))
	} else if c.StagingVolume.EmptyDir == nil && c.StagingVolume.Ephemeral == nil {
		errs = append(errs, errors.New("staging volume must be per pod (emptyDir or ephemeral): on a volume shared by pods one sidecar's recovery would delete another's copies"))
	}
	if countSources(c.SnapshotVolume) != 1 {
		errs = append(errs, errors.New("snapshot volume must set exactly one volume source"))
	}
	if c.VaultAddr != "" {
		if u, err := url.Parse(c.VaultAddr); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs = append(errs, fmt.Errorf("vault address %q must be an http(s):// URL", c.VaultAddr))
		}
	}
	if c.BrokerURL != "" {
		u, err := url.Parse(c.BrokerURL)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			errs = append(errs, fmt.Errorf("broker URL %q must be an https:// URL", c.BrokerURL))
		}
	}
	for _, p := range c.HostPathAllow {
		if !path.IsAbs(p) || path.Clean(p) == "/" {
			errs = append(errs, fmt.Errorf("allowed host path %q must be an absolute path other than /", p))
		}
	}
	for _, t := range c.InlineVolumeAllow {
		if !slices.Contains(guard.InlineTypes(), t) {
			errs = append(errs, fmt.Errorf("inline volume type %q is not one of %v", t, guard.InlineTypes()))
		}
	}
	return errors.Join(errs...)
}

// Rules are the pod invariant for this configuration: what the guard needs to know about the
// share, the hosts the sidecar talks to and the admin's allowances.
func (c *Config) Rules(keys *guard.Keyring) *guard.Rules {
	r := &guard.Rules{
		Snapshot:          c.SnapshotVolume,
		HostPathAllow:     c.HostPathAllow,
		InlineVolumeAllow: c.InlineVolumeAllow,
		Audiences:         []string{contract.TokenAudience},
		Keys:              keys,
	}
	for _, addr := range []string{c.BrokerURL, c.VaultAddr} {
		if u, err := url.Parse(addr); err == nil && u.Hostname() != "" {
			r.GuardedHosts = append(r.GuardedHosts, u.Hostname())
		}
	}
	return r
}

// countSources counts the non-nil members of a VolumeSource.
func countSources(v corev1.VolumeSource) int {
	n := 0
	for _, set := range []bool{
		v.HostPath != nil, v.EmptyDir != nil, v.GCEPersistentDisk != nil, v.AWSElasticBlockStore != nil,
		v.Secret != nil, v.NFS != nil, v.ISCSI != nil, v.Glusterfs != nil, v.PersistentVolumeClaim != nil,
		v.RBD != nil, v.FlexVolume != nil, v.Cinder != nil, v.CephFS != nil, v.Flocker != nil,
		v.DownwardAPI != nil, v.FC != nil, v.AzureFile != nil, v.ConfigMap != nil, v.VsphereVolume != nil,
		v.Quobyte != nil, v.AzureDisk != nil, v.PhotonPersistentDisk != nil, v.Projected != nil,
		v.PortworxVolume != nil, v.ScaleIO != nil, v.StorageOS != nil, v.CSI != nil, v.Ephemeral != nil,
		v.Image != nil,
	} {
		if set {
			n++
		}
	}
	return n
}

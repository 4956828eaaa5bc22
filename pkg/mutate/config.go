package mutate

import (
	"errors"
	"fmt"
	"net/url"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/warden-dev/warden/pkg/api"
)

// Config is what the webhook injects. The zero value is not usable; start from DefaultConfig.
type Config struct {
	// SidecarImage is the warden-sidecar image.
	SidecarImage           string
	SidecarImagePullPolicy corev1.PullPolicy
	// SidecarPort is the loopback port the sidecar listens on (WARDEN_PORT).
	SidecarPort int32
	// NativeSidecar injects the sidecar as an init container with restartPolicy Always
	// (Kubernetes >= 1.29). When false it is a regular container, for older clusters.
	NativeSidecar bool
	// SidecarResources are the sidecar's requests and limits.
	SidecarResources corev1.ResourceRequirements
	// SidecarUID is the user (and group) the sidecar runs as.
	SidecarUID int64

	// StagingVolume backs the staging area shared by sidecar (read-write) and app (read-only).
	StagingVolume corev1.VolumeSource
	// SnapshotVolume is the dataset snapshot share, mounted read-only into the sidecar only.
	SnapshotVolume corev1.VolumeSource
	// TokenExpirationSeconds of the projected token the sidecar shows the broker (>= 600).
	TokenExpirationSeconds int64
	// BrokerURL, when set, is passed to the sidecar as --broker-url.
	BrokerURL string
	// BrokerCA (PEM) is given to the sidecar to verify the broker (WARDEN_BROKER_CA).
	BrokerCA string
	// VaultAddr, when set, enables the sidecar's secrets endpoints (--vault-addr).
	VaultAddr string

	// ExemptNamespaces are never touched, whatever their labels. The system namespaces and the
	// webhook's own namespace are always exempt.
	ExemptNamespaces []string
}

// SystemNamespaces are never injected: breaking them would break the cluster.
var SystemNamespaces = []string{"kube-system", "kube-public", "kube-node-lease"}

// DefaultConfig returns a configuration that works on a current cluster once the snapshot share
// is available as a PersistentVolumeClaim named "warden-snapshots" in each opted-in namespace.
func DefaultConfig() Config {
	return Config{
		SidecarImage:           "ghcr.io/warden-dev/warden-sidecar:latest",
		SidecarImagePullPolicy: corev1.PullIfNotPresent,
		SidecarPort:            api.DefaultSidecarPort,
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
	if c.TokenExpirationSeconds < 600 {
		errs = append(errs, fmt.Errorf("token expiration %ds is below the Kubernetes minimum of 600s", c.TokenExpirationSeconds))
	}
	if countSources(c.StagingVolume) != 1 {
		errs = append(errs, errors.New("staging volume must set exactly one volume source"))
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
	if slices.Contains(c.ExemptNamespaces, "") {
		errs = append(errs, errors.New("exempt namespaces contain an empty name"))
	}
	return errors.Join(errs...)
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

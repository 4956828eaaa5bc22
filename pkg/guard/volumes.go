package guard

import (
	"path"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/warden-dev/warden/pkg/contract"
)

// A user volume may use the sources below freely: they hold the pod's own objects or per-pod
// storage. PersistentVolumeClaims, ephemeral volumes and CSI volumes are checked against the
// share; hostPath and the in-tree network volumes reach storage Warden cannot see behind and are
// refused unless an admin allows them.

// inlineTypes are the in-tree volume types that name storage directly (not through a claim).
var inlineTypes = []string{
	"nfs", "iscsi", "glusterfs", "rbd", "cephfs", "fc", "flexVolume", "flocker", "quobyte",
	"portworxVolume", "scaleIO", "storageos", "azureFile", "azureDisk", "cinder",
	"gcePersistentDisk", "awsElasticBlockStore", "vsphereVolume", "photonPersistentDisk", "gitRepo",
}

// InlineTypes lists the volume types Rules.InlineVolumeAllow may name.
func InlineTypes() []string { return slices.Clone(inlineTypes) }

// inlineType names the in-tree network source v uses, "" for none.
func inlineType(v *corev1.VolumeSource) string {
	for _, t := range []struct {
		name string
		set  bool
	}{
		{"nfs", v.NFS != nil}, {"iscsi", v.ISCSI != nil}, {"glusterfs", v.Glusterfs != nil}, {"rbd", v.RBD != nil},
		{"cephfs", v.CephFS != nil}, {"fc", v.FC != nil}, {"flexVolume", v.FlexVolume != nil}, {"flocker", v.Flocker != nil},
		{"quobyte", v.Quobyte != nil}, {"portworxVolume", v.PortworxVolume != nil}, {"scaleIO", v.ScaleIO != nil},
		{"storageos", v.StorageOS != nil}, {"azureFile", v.AzureFile != nil}, {"azureDisk", v.AzureDisk != nil},
		{"cinder", v.Cinder != nil}, {"gcePersistentDisk", v.GCEPersistentDisk != nil},
		{"awsElasticBlockStore", v.AWSElasticBlockStore != nil}, {"vsphereVolume", v.VsphereVolume != nil},
		{"photonPersistentDisk", v.PhotonPersistentDisk != nil}, {"gitRepo", v.GitRepo != nil},
	} {
		if t.set {
			return t.name
		}
	}
	return ""
}

// Backing is the storage behind the dataset share in one namespace: the share's own source
// when it names storage directly, else the PersistentVolume its claim is bound to. Volumes are
// judged against both, so a pod cannot reach the share's storage under another name (an inline
// CSI volume of the driver behind the share's PersistentVolume, an NFS volume of its export).
type Backing struct {
	// CSIDriver serves the share ("" for none).
	CSIDriver string
	// NFS is the share's export (nil for none).
	NFS *corev1.NFSVolumeSource
	// HostPath is the share's directory on the node ("" for none).
	HostPath string
	// Unknown says why the storage behind the share's claim cannot be told yet (not bound, the
	// PersistentVolume not readable); "" when it is known. Inline CSI volumes are refused
	// meanwhile: any driver might be the share's.
	Unknown string
}

// Shares tells the storage behind a namespace's share claim. The webhook reads it from the
// API server's claims and PersistentVolumes; it never fails: what it cannot read is Unknown.
type Shares interface {
	Backing(namespace, claim string) Backing
}

// PersistentVolumeBacking is the storage a PersistentVolume names, for Shares implementations:
// the same three kinds Rules.backing reads from a share given by flag.
func PersistentVolumeBacking(src *corev1.PersistentVolumeSource) Backing {
	var b Backing
	switch {
	case src.CSI != nil:
		b.CSIDriver = src.CSI.Driver
	case src.NFS != nil:
		b.NFS = src.NFS
	case src.HostPath != nil:
		b.HostPath = src.HostPath.Path
	case src.Local != nil:
		b.HostPath = src.Local.Path
	}
	return b
}

// backing is the storage behind the share in namespace.
func (r *Rules) backing(namespace string) Backing {
	share := &r.Snapshot
	var b Backing
	switch {
	case share.CSI != nil:
		b.CSIDriver = share.CSI.Driver
	case share.NFS != nil:
		b.NFS = share.NFS
	case share.HostPath != nil:
		b.HostPath = share.HostPath.Path
	case share.PersistentVolumeClaim != nil:
		if r.Shares == nil {
			b.Unknown = "Warden was started without a way to read the share's PersistentVolume"
		} else {
			b = r.Shares.Backing(namespace, share.PersistentVolumeClaim.ClaimName)
		}
	}
	return b
}

// Volume judges one volume that is not Warden's, in namespace.
func (r *Rules) Volume(namespace string, i int, vol *corev1.Volume) *Violation {
	return r.volume(i, vol, func() Backing { return r.backing(namespace) })
}

// volume judges one volume; share is called only for the volumes that must be compared with
// the share's storage (a lookup per pod at most, and none for most pods).
func (r *Rules) volume(i int, vol *corev1.Volume, share func() Backing) *Violation {
	src := &vol.VolumeSource
	refuse := func(what string) *Violation {
		return Deny(ReasonForbiddenVolume, "spec.volumes[%d] (%q) %s; only the Warden sidecar reaches the dataset share: remove the volume and ask the sidecar at http://127.0.0.1:$%s/v1/datasets", i, vol.Name, what, contract.EnvPort)
	}
	switch {
	case src.HostPath != nil:
		p := src.HostPath.Path
		if b := share(); b.HostPath != "" && PathsOverlap(p, b.HostPath) {
			return refuse("mounts host path " + p + ", which overlaps the dataset share")
		}
		if !slices.ContainsFunc(r.HostPathAllow, func(prefix string) bool { return under(p, prefix) }) {
			return Deny(ReasonForbiddenVolume, "spec.volumes[%d] (%q) mounts host path %q; the node's filesystem holds every pod's credentials, so Warden pods may mount only host paths a cluster admin allowed (webhook flag --allow-host-path, now %q)", i, vol.Name, p, r.HostPathAllow)
		}
	case src.PersistentVolumeClaim != nil:
		if pvc := r.Snapshot.PersistentVolumeClaim; pvc != nil && src.PersistentVolumeClaim.ClaimName == pvc.ClaimName {
			return refuse("mounts the claim " + pvc.ClaimName + ", which is the dataset share")
		}
	case src.Ephemeral != nil:
		if t := src.Ephemeral.VolumeClaimTemplate; t != nil && r.clonesShare(t.Spec.DataSource, t.Spec.DataSourceRef) {
			return refuse("would be a copy of the dataset share (its dataSource names the share's claim)")
		}
	case src.CSI != nil:
		switch b := share(); {
		case b.CSIDriver != "" && src.CSI.Driver == b.CSIDriver:
			return refuse("uses CSI driver " + src.CSI.Driver + ", which serves the dataset share")
		case b.Unknown != "":
			return refuse("is an inline CSI volume (driver " + src.CSI.Driver + ") while the storage behind the dataset share cannot be told: " + b.Unknown)
		}
	case src.Projected != nil:
		for j, s := range src.Projected.Sources {
			if t := s.ServiceAccountToken; t != nil && slices.Contains(r.Audiences, t.Audience) {
				return Deny(ReasonTokenAudience, "spec.volumes[%d] (%q) projects a service-account token for audience %q (sources[%d]), which only the Warden sidecar may hold: it would let the pod call the broker or Vault past the sidecar and its audit log; remove that source", i, vol.Name, t.Audience, j)
			}
			if c := s.PodCertificate; c != nil && c.SignerName == contract.SignerName {
				return Deny(ReasonTokenAudience, "spec.volumes[%d] (%q) asks for a pod certificate from Warden's signer %s (sources[%d]), which only the Warden sidecar may hold; remove that source", i, vol.Name, contract.SignerName, j)
			}
		}
	}
	if t := inlineType(src); t != "" {
		if b := share(); src.NFS != nil && b.NFS != nil && PathsOverlap(src.NFS.Path, b.NFS.Path) {
			// Whatever the server is called: a name with a trailing dot, an IP, an alias.
			return refuse("mounts NFS path " + src.NFS.Path + ", which overlaps the dataset share's export " + b.NFS.Path)
		}
		if !slices.Contains(r.InlineVolumeAllow, t) {
			return Deny(ReasonForbiddenVolume, "spec.volumes[%d] (%q) is an inline %s volume, which can reach storage behind the dataset share; use a PersistentVolumeClaim, or ask a cluster admin to allow %s volumes (webhook flag --allow-inline-volumes)", i, vol.Name, t, t)
		}
	}
	return nil
}

// clonesShare reports whether a claim's data source is the share's claim.
func (r *Rules) clonesShare(ds *corev1.TypedLocalObjectReference, ref *corev1.TypedObjectReference) bool {
	pvc := r.Snapshot.PersistentVolumeClaim
	if pvc == nil {
		return false
	}
	isClaim := func(group *string, kind, name string) bool {
		return (group == nil || *group == "") && kind == "PersistentVolumeClaim" && name == pvc.ClaimName
	}
	return (ds != nil && isClaim(ds.APIGroup, ds.Kind, ds.Name)) || (ref != nil && isClaim(ref.APIGroup, ref.Kind, ref.Name))
}

// Claim judges a PersistentVolumeClaim created in an opted-in namespace: a clone of the share
// would hand the whole share to whoever mounts it.
func (r *Rules) Claim(spec *corev1.PersistentVolumeClaimSpec) *Violation {
	if r.clonesShare(spec.DataSource, spec.DataSourceRef) {
		return Deny(ReasonForbiddenVolume, "the claim's dataSource is %q, the dataset share; only the Warden sidecar reaches the share: remove the dataSource", r.Snapshot.PersistentVolumeClaim.ClaimName)
	}
	return nil
}

// SnapshotOf judges a VolumeSnapshot created in an opted-in namespace.
func (r *Rules) SnapshotOf(claim string) *Violation {
	if pvc := r.Snapshot.PersistentVolumeClaim; pvc != nil && claim == pvc.ClaimName {
		return Deny(ReasonForbiddenVolume, "the snapshot's source is %q, the dataset share; only the Warden sidecar reaches the share", claim)
	}
	return nil
}

// PathsOverlap is true when one path contains the other: mounting a parent reaches the child.
func PathsOverlap(a, b string) bool {
	return under(a, b) || under(b, a)
}

// under is true when p is prefix or below it.
func under(p, prefix string) bool {
	p, prefix = cleanAbs(p), cleanAbs(prefix)
	// Not HasPrefix(p, prefix+"/"): the concatenation allocates on every mount judged.
	return p == prefix || prefix == "/" || len(p) > len(prefix) && p[len(prefix)] == '/' && strings.HasPrefix(p, prefix)
}

// cleanAbs is path.Clean("/"+p), without its allocations for the common already-clean path.
func cleanAbs(p string) string {
	if isCleanAbs(p) {
		return p
	}
	return path.Clean("/" + p)
}

// isCleanAbs is whether path.Clean("/"+p) == p, in one pass: absolute, and no empty, "." or
// ".." segment (no trailing slash either), or just "/".
func isCleanAbs(p string) bool {
	if p == "/" {
		return true
	}
	if p == "" || p[0] != '/' {
		return false
	}
	start := 1
	for i := 1; i <= len(p); i++ {
		if i < len(p) && p[i] != '/' {
			continue
		}
		if seg := p[start:i]; seg == "" || seg == "." || seg == ".." {
			return false
		}
		start = i + 1
	}
	return true
}

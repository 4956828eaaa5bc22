package mutate

import (
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	sigsjson "sigs.k8s.io/json"

	"github.com/warden-dev/warden/pkg/admission/review"
	"github.com/warden-dev/warden/pkg/contract"
)

// Decoding is most of an admission's cost, and most of a pod is irrelevant to Warden's checks
// (resources, probes, commands). A pod seen for the first time is decoded into the view below,
// which holds exactly what the checks (pkg/guard's invariant included) and the patch read; the
// decoder skips everything else. A pod that already carries Warden's status annotation is
// decoded in full, because its seal covers Warden's parts field by field.

type podView struct {
	Metadata *struct {
		Name         string            `json:"name"`
		GenerateName string            `json:"generateName"`
		Labels       map[string]string `json:"labels"`
		Annotations  map[string]string `json:"annotations"`
	} `json:"metadata"`
	Spec *struct {
		ServiceAccountName    string               `json:"serviceAccountName"`
		ShareProcessNamespace *bool                `json:"shareProcessNamespace"`
		HostPID               bool                 `json:"hostPID"`
		HostIPC               bool                 `json:"hostIPC"`
		HostNetwork           bool                 `json:"hostNetwork"`
		HostAliases           []corev1.HostAlias   `json:"hostAliases"`
		DNSPolicy             corev1.DNSPolicy     `json:"dnsPolicy"`
		DNSConfig             *corev1.PodDNSConfig `json:"dnsConfig"`
		Volumes               []volumeView         `json:"volumes"`
		InitContainers        []containerView      `json:"initContainers"`
		Containers            []containerView      `json:"containers"`
		EphemeralContainers   []containerView      `json:"ephemeralContainers"`
	} `json:"spec"`
}

// volumeView keeps what pkg/guard reads of a volume: the sources that can reach the share or
// the node, in full, and of every other in-tree network source only that it is there.
type volumeView struct {
	Name                  string                                    `json:"name"`
	HostPath              *corev1.HostPathVolumeSource              `json:"hostPath"`
	NFS                   *corev1.NFSVolumeSource                   `json:"nfs"`
	PersistentVolumeClaim *corev1.PersistentVolumeClaimVolumeSource `json:"persistentVolumeClaim"`
	CSI                   *corev1.CSIVolumeSource                   `json:"csi"`
	Ephemeral             *struct {
		VolumeClaimTemplate *struct {
			Spec struct {
				DataSource    *corev1.TypedLocalObjectReference `json:"dataSource"`
				DataSourceRef *corev1.TypedObjectReference      `json:"dataSourceRef"`
			} `json:"spec"`
		} `json:"volumeClaimTemplate"`
	} `json:"ephemeral"`
	Projected *struct {
		Sources []struct {
			ServiceAccountToken *corev1.ServiceAccountTokenProjection `json:"serviceAccountToken"`
		} `json:"sources"`
	} `json:"projected"`
	ISCSI                present `json:"iscsi"`
	Glusterfs            present `json:"glusterfs"`
	RBD                  present `json:"rbd"`
	CephFS               present `json:"cephfs"`
	FC                   present `json:"fc"`
	FlexVolume           present `json:"flexVolume"`
	Flocker              present `json:"flocker"`
	Quobyte              present `json:"quobyte"`
	PortworxVolume       present `json:"portworxVolume"`
	ScaleIO              present `json:"scaleIO"`
	StorageOS            present `json:"storageos"`
	AzureFile            present `json:"azureFile"`
	AzureDisk            present `json:"azureDisk"`
	Cinder               present `json:"cinder"`
	GCEPersistentDisk    present `json:"gcePersistentDisk"`
	AWSElasticBlockStore present `json:"awsElasticBlockStore"`
	VsphereVolume        present `json:"vsphereVolume"`
	PhotonPersistentDisk present `json:"photonPersistentDisk"`
	GitRepo              present `json:"gitRepo"`
}

// present records that a field was set to something other than null, without decoding it.
type present bool

func (p *present) UnmarshalJSON(b []byte) error {
	*p = string(b) != "null"
	return nil
}

func (v *volumeView) volume() corev1.Volume {
	out := corev1.Volume{Name: v.Name, VolumeSource: corev1.VolumeSource{
		HostPath: v.HostPath, NFS: v.NFS, PersistentVolumeClaim: v.PersistentVolumeClaim, CSI: v.CSI,
	}}
	s := &out.VolumeSource
	if e := v.Ephemeral; e != nil {
		s.Ephemeral = &corev1.EphemeralVolumeSource{}
		if t := e.VolumeClaimTemplate; t != nil {
			s.Ephemeral.VolumeClaimTemplate = &corev1.PersistentVolumeClaimTemplate{Spec: corev1.PersistentVolumeClaimSpec{
				DataSource: t.Spec.DataSource, DataSourceRef: t.Spec.DataSourceRef,
			}}
		}
	}
	if p := v.Projected; p != nil {
		s.Projected = &corev1.ProjectedVolumeSource{Sources: make([]corev1.VolumeProjection, len(p.Sources))}
		for i, src := range p.Sources {
			s.Projected.Sources[i].ServiceAccountToken = src.ServiceAccountToken
		}
	}
	set := func(on present, f func()) {
		if on {
			f()
		}
	}
	set(v.ISCSI, func() { s.ISCSI = &corev1.ISCSIVolumeSource{} })
	set(v.Glusterfs, func() { s.Glusterfs = &corev1.GlusterfsVolumeSource{} })
	set(v.RBD, func() { s.RBD = &corev1.RBDVolumeSource{} })
	set(v.CephFS, func() { s.CephFS = &corev1.CephFSVolumeSource{} })
	set(v.FC, func() { s.FC = &corev1.FCVolumeSource{} })
	set(v.FlexVolume, func() { s.FlexVolume = &corev1.FlexVolumeSource{} })
	set(v.Flocker, func() { s.Flocker = &corev1.FlockerVolumeSource{} })
	set(v.Quobyte, func() { s.Quobyte = &corev1.QuobyteVolumeSource{} })
	set(v.PortworxVolume, func() { s.PortworxVolume = &corev1.PortworxVolumeSource{} })
	set(v.ScaleIO, func() { s.ScaleIO = &corev1.ScaleIOVolumeSource{} })
	set(v.StorageOS, func() { s.StorageOS = &corev1.StorageOSVolumeSource{} })
	set(v.AzureFile, func() { s.AzureFile = &corev1.AzureFileVolumeSource{} })
	set(v.AzureDisk, func() { s.AzureDisk = &corev1.AzureDiskVolumeSource{} })
	set(v.Cinder, func() { s.Cinder = &corev1.CinderVolumeSource{} })
	set(v.GCEPersistentDisk, func() { s.GCEPersistentDisk = &corev1.GCEPersistentDiskVolumeSource{} })
	set(v.AWSElasticBlockStore, func() { s.AWSElasticBlockStore = &corev1.AWSElasticBlockStoreVolumeSource{} })
	set(v.VsphereVolume, func() { s.VsphereVolume = &corev1.VsphereVirtualDiskVolumeSource{} })
	set(v.PhotonPersistentDisk, func() { s.PhotonPersistentDisk = &corev1.PhotonPersistentDiskVolumeSource{} })
	set(v.GitRepo, func() { s.GitRepo = &corev1.GitRepoVolumeSource{} })
	return out
}

type containerView struct {
	Name string `json:"name"`
	Env  []struct {
		Name string `json:"name"`
	} `json:"env"`
	VolumeMounts  []corev1.VolumeMount  `json:"volumeMounts"`
	VolumeDevices []corev1.VolumeDevice `json:"volumeDevices"`
	Ports         []struct {
		ContainerPort int32 `json:"containerPort"`
	} `json:"ports"`
	SecurityContext *struct {
		Privileged   *bool `json:"privileged"`
		Capabilities *struct {
			Add []corev1.Capability `json:"add"`
		} `json:"capabilities"`
		ProcMount *corev1.ProcMountType `json:"procMount"`
	} `json:"securityContext"`
	TargetContainerName string `json:"targetContainerName"`
}

func (v *containerView) container() corev1.Container {
	c := corev1.Container{Name: v.Name, VolumeMounts: v.VolumeMounts, VolumeDevices: v.VolumeDevices}
	if len(v.Env) > 0 {
		c.Env = make([]corev1.EnvVar, len(v.Env))
		for i, e := range v.Env {
			c.Env[i].Name = e.Name
		}
	}
	if len(v.Ports) > 0 {
		c.Ports = make([]corev1.ContainerPort, len(v.Ports))
		for i, p := range v.Ports {
			c.Ports[i].ContainerPort = p.ContainerPort
		}
	}
	if sc := v.SecurityContext; sc != nil {
		c.SecurityContext = &corev1.SecurityContext{Privileged: sc.Privileged, ProcMount: sc.ProcMount}
		if sc.Capabilities != nil {
			c.SecurityContext.Capabilities = &corev1.Capabilities{Add: sc.Capabilities.Add}
		}
	}
	return c
}

func containers(vs []containerView) []corev1.Container {
	if len(vs) == 0 {
		return nil
	}
	out := make([]corev1.Container, len(vs))
	for i := range vs {
		out[i] = vs[i].container()
	}
	return out
}

// decodePod decodes the raw object case-sensitively, as the API server does. The patch addresses
// /metadata and /spec, so both must be JSON objects (pointers tell absent from empty), and a pod
// needs a container; the API server never sends anything else, but the handler must not trust it.
func decodePod(raw []byte) (*corev1.Pod, error) {
	var v podView
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(raw, &v); err != nil {
		return nil, fmt.Errorf("cannot decode pod: %w", err)
	}
	switch {
	case v.Metadata == nil:
		return nil, errors.New("pod has no metadata object")
	case v.Spec == nil:
		return nil, errors.New("pod has no spec object")
	case len(v.Spec.Containers) == 0:
		return nil, errors.New("pod has no containers")
	}
	if _, injected := v.Metadata.Annotations[contract.AnnotationStatus]; injected {
		return review.DecodePod(raw)
	}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: v.Metadata.Name, GenerateName: v.Metadata.GenerateName,
			Labels: v.Metadata.Labels, Annotations: v.Metadata.Annotations,
		},
		Spec: corev1.PodSpec{
			ServiceAccountName:    v.Spec.ServiceAccountName,
			ShareProcessNamespace: v.Spec.ShareProcessNamespace,
			HostPID:               v.Spec.HostPID,
			HostIPC:               v.Spec.HostIPC,
			HostNetwork:           v.Spec.HostNetwork,
			HostAliases:           v.Spec.HostAliases,
			DNSPolicy:             v.Spec.DNSPolicy,
			DNSConfig:             v.Spec.DNSConfig,
			InitContainers:        containers(v.Spec.InitContainers),
			Containers:            containers(v.Spec.Containers),
		},
	}
	if len(v.Spec.Volumes) > 0 {
		p.Spec.Volumes = make([]corev1.Volume, len(v.Spec.Volumes))
		for i := range v.Spec.Volumes {
			p.Spec.Volumes[i] = v.Spec.Volumes[i].volume()
		}
	}
	for i := range v.Spec.EphemeralContainers {
		ec := &v.Spec.EphemeralContainers[i]
		p.Spec.EphemeralContainers = append(p.Spec.EphemeralContainers, corev1.EphemeralContainer{
			EphemeralContainerCommon: corev1.EphemeralContainerCommon(ec.container()),
			TargetContainerName:      ec.TargetContainerName,
		})
	}
	return p, nil
}

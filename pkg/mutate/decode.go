package mutate

import (
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	sigsjson "sigs.k8s.io/json"

	"github.com/warden-dev/warden/pkg/api"
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
		Volumes               []corev1.Volume      `json:"volumes"`
		InitContainers        []containerView      `json:"initContainers"`
		Containers            []containerView      `json:"containers"`
		EphemeralContainers   []containerView      `json:"ephemeralContainers"`
	} `json:"spec"`
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
	if _, injected := v.Metadata.Annotations[api.AnnotationStatus]; injected {
		return decodeFull(raw)
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
			Volumes:               v.Spec.Volumes,
			InitContainers:        containers(v.Spec.InitContainers),
			Containers:            containers(v.Spec.Containers),
		},
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

func decodeFull(raw []byte) (*corev1.Pod, error) {
	var obj struct {
		Metadata metav1.ObjectMeta `json:"metadata"`
		Spec     corev1.PodSpec    `json:"spec"`
	}
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(raw, &obj); err != nil {
		return nil, fmt.Errorf("cannot decode pod: %w", err)
	}
	return &corev1.Pod{ObjectMeta: obj.Metadata, Spec: obj.Spec}, nil
}

package review

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	sigsjson "sigs.k8s.io/json"

	"github.com/warden-dev/warden/pkg/contract"
	"github.com/warden-dev/warden/pkg/guard"
)

// judged is what ReadPod promises of a fully decoded pod: every field the checks read, Warden's
// parts whole. Comparing it with ReadPod's result is the differential test of the fast decoder.
func judged(full *corev1.Pod) *corev1.Pod {
	out := &corev1.Pod{}
	out.Name, out.GenerateName, out.Labels, out.Annotations = full.Name, full.GenerateName, full.Labels, full.Annotations
	s, o := &full.Spec, &out.Spec
	o.ServiceAccountName, o.ShareProcessNamespace = s.ServiceAccountName, s.ShareProcessNamespace
	o.HostPID, o.HostIPC, o.HostNetwork, o.HostAliases = s.HostPID, s.HostIPC, s.HostNetwork, s.HostAliases
	o.DNSPolicy, o.DNSConfig, o.Volumes = s.DNSPolicy, s.DNSConfig, judgedVolumes(s.Volumes)
	o.InitContainers, o.Containers = judgedContainers(s.InitContainers), judgedContainers(s.Containers)
	if s.EphemeralContainers != nil {
		o.EphemeralContainers = make([]corev1.EphemeralContainer, len(s.EphemeralContainers))
		for i, ec := range s.EphemeralContainers {
			c := judgedContainer(corev1.Container(ec.EphemeralContainerCommon))
			o.EphemeralContainers[i] = corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon(c), TargetContainerName: ec.TargetContainerName}
			if c.Name == contract.SidecarName {
				o.EphemeralContainers[i].TargetContainerName = ""
			}
		}
	}
	return out
}

func judgedContainers(cs []corev1.Container) []corev1.Container {
	if cs == nil {
		return nil
	}
	out := make([]corev1.Container, len(cs))
	for i, c := range cs {
		out[i] = judgedContainer(c)
	}
	return out
}

func judgedContainer(c corev1.Container) corev1.Container {
	if c.Name == contract.SidecarName {
		return c
	}
	out := corev1.Container{Name: c.Name, VolumeMounts: c.VolumeMounts, VolumeDevices: c.VolumeDevices}
	if c.Env != nil {
		out.Env = make([]corev1.EnvVar, len(c.Env))
		for i, e := range c.Env {
			if strings.HasPrefix(e.Name, contract.EnvPrefix) {
				out.Env[i].Name = e.Name // only Warden's reserved names are read
			}
		}
	}
	if c.Ports != nil {
		out.Ports = make([]corev1.ContainerPort, len(c.Ports))
		for i, p := range c.Ports {
			out.Ports[i].ContainerPort = p.ContainerPort
		}
	}
	if sc := c.SecurityContext; sc != nil {
		out.SecurityContext = &corev1.SecurityContext{Privileged: sc.Privileged, ProcMount: sc.ProcMount}
		if sc.Capabilities != nil {
			out.SecurityContext.Capabilities = &corev1.Capabilities{Add: sc.Capabilities.Add}
		}
	}
	return out
}

func judgedVolumes(vs []corev1.Volume) []corev1.Volume {
	if vs == nil {
		return nil
	}
	out := make([]corev1.Volume, len(vs))
	for i, v := range vs {
		out[i] = v
		if strings.HasPrefix(v.Name, contract.ReservedNamePrefix) {
			continue
		}
		src := &out[i].VolumeSource
		src.ConfigMap, src.Secret, src.EmptyDir = marked(src.ConfigMap), marked(src.Secret), marked(src.EmptyDir)
		src.DownwardAPI, src.Image = marked(src.DownwardAPI), marked(src.Image)
		if p := v.Projected; p != nil {
			src.Projected = &corev1.ProjectedVolumeSource{Sources: judgedProjections(p.Sources)}
		}
	}
	return out
}

// marked is what ReadPod keeps of a source the guard only tells apart: that it is set.
func marked[T any](p *T) *T {
	if p == nil {
		return nil
	}
	return new(T)
}

func judgedProjections(ps []corev1.VolumeProjection) []corev1.VolumeProjection {
	if ps == nil {
		return nil
	}
	out := make([]corev1.VolumeProjection, len(ps))
	for i, p := range ps {
		if t := p.ServiceAccountToken; t != nil {
			out[i].ServiceAccountToken = &corev1.ServiceAccountTokenProjection{Audience: t.Audience}
		}
		if c := p.PodCertificate; c != nil {
			out[i].PodCertificate = &corev1.PodCertificateProjection{SignerName: c.SignerName}
		}
	}
	return out
}

func seeds(f *testing.F) {
	files, _ := filepath.Glob("../mutate/testdata/golden/*.pod.json")
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(goodReview))
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"resource":{"resource":"pods"},"object":{"metadata":{"name":"p"},"spec":{"volumes":[{"name":"warden-x","emptyDir":{}}],"containers":[{"name":"warden-sidecar","image":"i"}]}},"oldObject":{"spec":5}}}`))
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","userInfo":{"username":"system:node:n","uid":"1","groups":["system:nodes",null,"\u00e9"],"extra":{"a":["x"],"b":null,"c":[]},"Extra":{"d":["y"]}}}}`))
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"userInfo":{"groups":null,"extra":null,"username":null}}}`))
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"userInfo":{"groups":[],"extra":{}}}}`))
	f.Add([]byte(`{"metadata":{"annotations":{"a":"1","a":"2"}},"spec":{"containers":[{"name":"warden-sidecar","image":"x","securityContext":{"privileged":true}}]}}`))
	f.Add([]byte(`{"spec":{"containers":[{"name":"c","securityContext":{"capabilities":{"add":["SYS_PTRACE"]},"procMount":"Unmasked"},"ports":[{"containerPort":80}]}],"volumes":[{"name":"v","projected":{"sources":[{"podCertificate":{"signerName":"warden.dev/pod"}}]}}]}}`))
	f.Add([]byte(`{"spec":{"volumes":[{"configMap":{"name":"c"},"name":"a"},{"name":"warden-x","secret":{"secretName":"s","defaultMode":420}},{"name":"p","projected":{"defaultMode":420,"sources":[{"serviceAccountToken":{"audience":"vault","path":"t","expirationSeconds":3600}},{"podCertificate":{"signerName":"warden.dev/pod","keyType":"ED25519"}},{"configMap":{"name":"x"}}]}},{"name":"c","persistentVolumeClaim":{"claimName":"share","readOnly":true},"emptyDir":null},{"name":"h","hostPath":{"path":"/var","type":""}},{"csi":{"driver":"d"},"name":"d","nfs":{"server":"s","path":"/"}}]}}`))
	f.Add([]byte(`{"spec":{"ephemeralContainers":[{"name":"d","targetContainerName":"warden-sidecar","env":[{"name":"\u0041","value":"x"}]}],"hostAliases":[{"ip":"1.2.3.4","hostnames":["vault"]}]}}`))
}

// FuzzReadPod: ReadPod agrees with the full case-sensitive decode on every field the checks
// read, and refuses what is not JSON. It may refuse what the reference accepts only for a
// repeated key, and accept what the reference refuses only for a wrong type in a field nothing judges.
func FuzzReadPod(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, err := ReadPod(raw)
		var full corev1.Pod
		refErr := sigsjson.UnmarshalCaseSensitivePreserveInts(raw, &full)
		switch {
		case !json.Valid(raw):
			require.Error(t, err, "not JSON")
			return
		case refErr != nil, errors.Is(err, errDuplicate):
			// A type the reference refuses in a field nothing judges is skipped, not decoded.
			return
		}
		require.NoError(t, err)
		require.Equal(t, judged(&full), got.Pod)
		requireEncodings(t, got)
	})
}

// requireEncodings: every Warden-named part has the guard's encoding of it as decoded.
func requireEncodings(t *testing.T, got Pod) {
	for init, cs := range map[bool][]corev1.Container{true: got.Spec.InitContainers, false: got.Spec.Containers} {
		for i := range cs {
			if cs[i].Name == contract.SidecarName {
				want, err := guard.ContainerEncoding(&cs[i])
				require.NoError(t, err)
				require.Equal(t, string(want), string(got.Parts.Container(init, i)))
			}
		}
	}
	for i := range got.Spec.Volumes {
		if strings.HasPrefix(got.Spec.Volumes[i].Name, contract.ReservedNamePrefix) {
			want, err := guard.VolumeEncoding(&got.Spec.Volumes[i])
			require.NoError(t, err)
			require.Equal(t, string(want), string(got.Parts.Volume(i)))
		}
	}
}

// FuzzDecodeReview: the envelope decoder agrees with the reference on every field of a review
// it decodes (the response, which the API server never sends, is skipped).
func FuzzDecodeReview(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		var got, want admissionv1.AdmissionReview
		pods, err := decodeReviewPods(body, &got)
		if err == nil {
			requirePodsAsRead(t, pods)
		}
		refErr := decodeReviewReference(body, &want)
		switch {
		case !json.Valid(body):
			require.Error(t, err, "not JSON")
			return
		case refErr != nil, errors.Is(err, errDuplicate):
			return
		}
		require.NoError(t, err)
		want.Response = nil
		require.Equal(t, want, got)
	})
}

// requirePodsAsRead: a pod read with the envelope is what ReadPod reads from its bytes.
func requirePodsAsRead(t *testing.T, pods *decodedPods) {
	for i := range pods.pod {
		if p := pods.pod[i].pod.Load(); p != nil {
			want, err := ReadPod(pods.pod[i].raw)
			require.NoError(t, err)
			require.Equal(t, want.Pod, p.Pod)
			require.Equal(t, want.HasMetadata, p.HasMetadata)
			require.Equal(t, want.HasSpec, p.HasSpec)
			require.Equal(t, want.Parts, p.Parts)
		}
	}
}

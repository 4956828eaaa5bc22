package guard

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/warden-dev/warden/pkg/contract"
)

func TestUpdate(t *testing.T) {
	k := testKeyring(t, "k1")
	r := testRules(k)
	for _, tc := range []struct {
		name   string
		change func(*corev1.Pod)
		reason string
	}{
		{"labels", func(p *corev1.Pod) { p.Labels = map[string]string{"x": "y", contract.LabelWorkload: "workspace"} }, ""},
		{"other annotation", func(p *corev1.Pod) { p.Annotations["team"] = "ds" }, ""},
		{"finalizer", func(p *corev1.Pod) { p.Finalizers = []string{"example.com/keep"} }, ""},
		{"app image", func(p *corev1.Pod) { p.Spec.Containers[0].Image = "python:3.13" }, ""},
		{"status rewritten", func(p *corev1.Pod) { p.Annotations[contract.AnnotationStatus] += " " }, ReasonImmutable},
		{"status removed", func(p *corev1.Pod) { delete(p.Annotations, contract.AnnotationStatus) }, ReasonImmutable},
		{"sidecar image", func(p *corev1.Pod) { p.Spec.InitContainers[0].Image = "evil" }, ReasonImmutable},
		{"sidecar resized", func(p *corev1.Pod) {
			p.Spec.InitContainers[0].Resources.Limits[corev1.ResourceMemory] = resource.MustParse("4Mi")
		}, ReasonImmutable},
		{"debug container on the app", func(p *corev1.Pod) {
			p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "dbg", Image: "busybox"}, TargetContainerName: "app"}}
		}, ""},
		{"debug container with the app's data mount", func(p *corev1.Pod) {
			p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "dbg",
				VolumeMounts: []corev1.VolumeMount{{Name: contract.VolumeStaging, MountPath: "/d", SubPath: ownSubPath, ReadOnly: true}}}}}
		}, ""},
		{"debug container on the sidecar", func(p *corev1.Pod) {
			p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "dbg"}, TargetContainerName: contract.SidecarName}}
		}, ReasonEphemeral},
		{"debug container with the token", func(p *corev1.Pod) {
			p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "dbg",
				VolumeMounts: []corev1.VolumeMount{{Name: contract.VolumeToken, MountPath: "/t"}}}}}
		}, ReasonForbiddenMount},
		{"debug container with all of staging", func(p *corev1.Pod) {
			p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "dbg",
				VolumeMounts: []corev1.VolumeMount{{Name: contract.VolumeStaging, MountPath: "/d", ReadOnly: true}}}}}
		}, ReasonForbiddenMount},
		{"debug container with SYS_PTRACE", func(p *corev1.Pod) {
			p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "dbg",
				SecurityContext: &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"SYS_PTRACE"}}}}}}
		}, ReasonCapability},
		{"debug container named like the sidecar", func(p *corev1.Pod) {
			p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: contract.SidecarName}}}
		}, ReasonImmutable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old := injectedPod(t, k)
			p := old.DeepCopy()
			tc.change(p)
			v := r.Update(old, p)
			if tc.reason == "" {
				assert.Nil(t, v)
				return
			}
			require.NotNil(t, v, "update admitted")
			assert.Equal(t, tc.reason, v.Reason, v.Message)
		})
	}

	// A pod injected by a Warden whose key is gone keeps receiving updates: they are judged old
	// against new, not by the seal.
	old := injectedPod(t, testKeyring(t, "retired"))
	p := old.DeepCopy()
	p.Labels = map[string]string{"x": "y"}
	assert.Nil(t, r.Update(old, p))

	// A pod that was never injected cannot be made to look injected by an update.
	plain := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}}}
	forged := plain.DeepCopy()
	forged.Annotations = map[string]string{contract.AnnotationStatus: old.Annotations[contract.AnnotationStatus]}
	v := r.Update(plain, forged)
	require.NotNil(t, v)
	assert.Equal(t, ReasonImmutable, v.Reason)
	debug := plain.DeepCopy()
	debug.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "dbg",
		VolumeMounts: []corev1.VolumeMount{{Name: contract.VolumeStaging, MountPath: "/d", ReadOnly: true, SubPath: ownSubPath}}}}}
	assert.NotNil(t, r.Update(plain, debug), "no Warden volume for a pod Warden did not inject")

	// The status removed (through pods/status, say), the sidecar swapped while the pod carries
	// no status, the status put back: each step is refused on its own, so no order of requests
	// gets an attacker's image into a sealed pod.
	stripped := old.DeepCopy()
	delete(stripped.Annotations, contract.AnnotationStatus)
	swapped := stripped.DeepCopy()
	swapped.Spec.InitContainers[0].Image = "evil"
	restored := swapped.DeepCopy()
	restored.Annotations[contract.AnnotationStatus] = old.Annotations[contract.AnnotationStatus]
	for name, step := range map[string][2]*corev1.Pod{
		"status removed": {old, stripped}, "sidecar swapped without a status": {stripped, swapped}, "status restored": {swapped, restored},
	} {
		v := r.Update(step[0], step[1])
		require.NotNil(t, v, name)
		assert.Equal(t, ReasonImmutable, v.Reason, name)
	}
	// Warden's volumes are compared by name too, listed in the status or not.
	extra := stripped.DeepCopy()
	extra.Spec.Volumes = append(extra.Spec.Volumes, corev1.Volume{Name: "warden-extra"})
	assert.NotNil(t, r.Update(stripped, extra))
	// Nothing to compare on a pod without Warden's parts: its own changes pass.
	relabelled := plain.DeepCopy()
	relabelled.Labels = map[string]string{"x": "y"}
	assert.Nil(t, r.Update(plain, relabelled))
}

func TestBinding(t *testing.T) {
	assert.Nil(t, Binding(nil))
	assert.Nil(t, Binding(map[string]string{"scheduler.example.com/zone": "a"}))
	v := Binding(map[string]string{contract.AnnotationStatus: "{}"})
	require.NotNil(t, v)
	assert.Equal(t, ReasonImmutable, v.Reason)
}

func TestConnect(t *testing.T) {
	assert.NotNil(t, Connect(contract.SidecarName))
	assert.NotNil(t, Connect(" Warden-Sidecar"))
	assert.Nil(t, Connect("app"))
	assert.Nil(t, Connect(""))
}

func TestCertificateRequester(t *testing.T) {
	nodes := []string{"system:nodes", "system:authenticated"}
	assert.Nil(t, CertificateRequester(contract.SignerName, "n1", "system:node:n1", nodes))
	assert.Nil(t, CertificateRequester("example.com/other", "n1", "alice", nil), "another signer's business")
	for name, tc := range map[string]struct {
		node, user string
		groups     []string
	}{
		"a tenant":                  {"n1", "alice", []string{"system:authenticated"}},
		"another node's kubelet":    {"n1", "system:node:n2", nodes},
		"a node name without group": {"n1", "system:node:n1", []string{"system:authenticated"}},
		"a service account":         {"n1", "system:serviceaccount:apps:svc", []string{"system:serviceaccounts"}},
		"no node named":             {"", "system:node:", nodes},
	} {
		v := CertificateRequester(contract.SignerName, tc.node, tc.user, tc.groups)
		require.NotNil(t, v, name)
		assert.Equal(t, ReasonCertificateRequester, v.Reason, name)
	}
}

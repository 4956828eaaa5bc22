package validate

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/warden-dev/warden/internal/testing/admissiontest"
	"github.com/warden-dev/warden/pkg/admission/mutate"
	"github.com/warden-dev/warden/pkg/admission/scope"
	"github.com/warden-dev/warden/pkg/contract"
	"github.com/warden-dev/warden/pkg/guard"
)

func testConfig() mutate.Config {
	cfg := mutate.DefaultConfig()
	cfg.SidecarImage = "example.com/warden-sidecar:test"
	return cfg
}

func newTestValidator(t testing.TB, m *scope.Metrics) *Validator {
	t.Helper()
	cfg := testConfig()
	v, err := New(cfg.ExemptNamespaces, admissiontest.OwnNamespace, admissiontest.Namespaces(), cfg.Rules(admissiontest.Keys), nil, m)
	require.NoError(t, err)
	return v
}

// inject runs a pod through the mutating handler and returns it as the API server would store
// it.
func inject(t testing.TB, pod *corev1.Pod) []byte {
	t.Helper()
	cfg := testConfig()
	h, err := mutate.NewHandler(cfg, admissiontest.OwnNamespace, admissiontest.Policy(t), admissiontest.Namespaces(), cfg.Rules(admissiontest.Keys), nil, nil)
	require.NoError(t, err)
	raw := admissiontest.MustJSON(t, pod)
	return admissiontest.ApplyPatch(t, raw, admissiontest.Admit(t, h, admissiontest.Request("apps", raw)))
}

// injectedRaw is the base pod injected, as a pod and as stored.
func injectedRaw(t testing.TB) (*corev1.Pod, []byte) {
	t.Helper()
	out := inject(t, admissiontest.BasePod("svc-prod-app-1"))
	return admissiontest.PodFrom(t, out), out
}

func requestFor(op admissionv1.Operation, group, resource, sub string, obj, old []byte) admission.Request {
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID: "uid", Namespace: "apps", Operation: op, SubResource: sub,
		Resource:  metav1.GroupVersionResource{Group: group, Version: "v1", Resource: resource},
		Object:    runtime.RawExtension{Raw: obj},
		OldObject: runtime.RawExtension{Raw: old},
	}}
}

func TestValidator(t *testing.T) {
	v := newTestValidator(t, nil)
	pod, raw := injectedRaw(t)
	withDebug := func(target string, mounts ...corev1.VolumeMount) []byte {
		p := pod.DeepCopy()
		p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
			Name: "dbg", Image: "busybox", VolumeMounts: mounts}, TargetContainerName: target}}
		return admissiontest.MustJSON(t, p)
	}
	resized := pod.DeepCopy()
	resized.Spec.InitContainers[0].Resources = corev1.ResourceRequirements{}
	relabelled := pod.DeepCopy()
	relabelled.Labels["team"] = "ds"
	forged := pod.DeepCopy()
	forged.Spec.InitContainers[0].Image = "evil/sidecar"
	notInjected := admissiontest.MustJSON(t, admissiontest.BasePod("svc-prod-app-1"))

	for _, tc := range []struct {
		name   string
		req    admission.Request
		reason string // "" = allowed
	}{
		{"injected pod created", requestFor(admissionv1.Create, "", "pods", "", raw, nil), ""},
		{"forged pod created", requestFor(admissionv1.Create, "", "pods", "", admissiontest.MustJSON(t, forged), nil), guard.ReasonForgedInjection},
		{"pod that skipped injection", requestFor(admissionv1.Create, "", "pods", "", notInjected, nil), guard.ReasonNotInjected},
		{"labels updated", requestFor(admissionv1.Update, "", "pods", "", admissiontest.MustJSON(t, relabelled), raw), ""},
		{"sidecar image updated", requestFor(admissionv1.Update, "", "pods", "", admissiontest.MustJSON(t, forged), raw), guard.ReasonImmutable},
		{"sidecar resized", requestFor(admissionv1.Update, "", "pods", "resize", admissiontest.MustJSON(t, resized), raw), guard.ReasonImmutable},
		{"kubectl debug on the app", requestFor(admissionv1.Update, "", "pods", "ephemeralcontainers", withDebug("app"), raw), ""},
		{"kubectl debug on the sidecar", requestFor(admissionv1.Update, "", "pods", "ephemeralcontainers", withDebug(contract.SidecarName), raw), guard.ReasonEphemeral},
		{"kubectl debug with the token", requestFor(admissionv1.Update, "", "pods", "ephemeralcontainers",
			withDebug("app", corev1.VolumeMount{Name: contract.VolumeToken, MountPath: "/t"}), raw), guard.ReasonForbiddenMount},
		{"exec into the sidecar", requestFor(admissionv1.Connect, "", "pods", "exec", []byte(`{"kind":"PodExecOptions","container":"warden-sidecar","command":["sh"]}`), nil), guard.ReasonSidecarAccess},
		{"attach to the sidecar", requestFor(admissionv1.Connect, "", "pods", "attach", []byte(`{"kind":"PodAttachOptions","container":"warden-sidecar"}`), nil), guard.ReasonSidecarAccess},
		{"exec into the app", requestFor(admissionv1.Connect, "", "pods", "exec", []byte(`{"kind":"PodExecOptions","container":"app","command":["sh"]}`), nil), ""},
		{"clone of the share", requestFor(admissionv1.Create, "", "persistentvolumeclaims", "", []byte(`{"spec":{"dataSource":{"kind":"PersistentVolumeClaim","name":"warden-snapshots"}}}`), nil), guard.ReasonForbiddenVolume},
		{"other claim", requestFor(admissionv1.Create, "", "persistentvolumeclaims", "", []byte(`{"spec":{"resources":{"requests":{"storage":"1Gi"}}}}`), nil), ""},
		{"snapshot of the share", requestFor(admissionv1.Create, "snapshot.storage.k8s.io", "volumesnapshots", "", []byte(`{"spec":{"source":{"persistentVolumeClaimName":"warden-snapshots"}}}`), nil), guard.ReasonForbiddenVolume},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, reg := admissiontest.Metrics()
			v := newTestValidator(t, m)
			resp := admissiontest.Admit(t, v, tc.req)
			if tc.reason == "" {
				assert.True(t, resp.Allowed, "%v", resp.Result)
				return
			}
			require.False(t, resp.Allowed, "admitted")
			assert.EqualValues(t, 403, resp.Result.Code)
			assert.Equal(t, 1.0, admissiontest.Count(t, reg, "warden_admission_denials_total", tc.reason), "reason %s counted", tc.reason)
		})
	}

	t.Run("out of scope", func(t *testing.T) {
		req := requestFor(admissionv1.Create, "", "pods", "", notInjected, nil)
		for _, ns := range []string{"plain", "kube-system", "warden-system"} {
			req.Namespace = ns
			assert.True(t, admissiontest.Admit(t, v, req).Allowed, ns)
		}
		assert.True(t, admissiontest.Admit(t, v, requestFor(admissionv1.Delete, "", "pods", "", nil, raw)).Allowed, "deletion is not judged")
	})
	t.Run("broken input", func(t *testing.T) {
		for _, req := range []admission.Request{
			requestFor(admissionv1.Create, "", "pods", "", []byte(`{`), nil),
			requestFor(admissionv1.Update, "", "pods", "", raw, []byte(`[]`)),
			requestFor(admissionv1.Connect, "", "pods", "exec", []byte(`"x"`), nil),
			requestFor(admissionv1.Create, "", "persistentvolumeclaims", "", []byte(`{"spec":1}`), nil),
		} {
			resp := admissiontest.Admit(t, v, req)
			assert.False(t, resp.Allowed)
			assert.EqualValues(t, 400, resp.Result.Code)
		}
	})
}

// TestTamperedPartsAfterGenuine: the decoder remembers Warden's parts by their bytes (see
// review/parts.go); a pod whose parts differ from a genuine one's by anything is still judged
// as it is, however often the genuine one was seen before.
func TestTamperedPartsAfterGenuine(t *testing.T) {
	v := newTestValidator(t, nil)
	pod, raw := injectedRaw(t)
	create := func(obj []byte) admission.Response {
		return admissiontest.Admit(t, v, requestFor(admissionv1.Create, "", "pods", "", obj, nil))
	}
	for _, tc := range []struct {
		name   string
		tamper func(*corev1.Pod)
	}{
		{"one more sidecar env", func(p *corev1.Pod) {
			p.Spec.InitContainers[0].Env = append(p.Spec.InitContainers[0].Env, corev1.EnvVar{Name: "X", Value: "y"})
		}},
		{"sidecar privileged", func(p *corev1.Pod) { p.Spec.InitContainers[0].SecurityContext.Privileged = ptr.To(true) }},
		{"token volume readable by all", func(p *corev1.Pod) {
			for i := range p.Spec.Volumes {
				if p.Spec.Volumes[i].Name == contract.VolumeToken {
					p.Spec.Volumes[i].Projected.DefaultMode = ptr.To[int32](0o777)
				}
			}
		}},
		{"staging volume on the node", func(p *corev1.Pod) {
			for i := range p.Spec.Volumes {
				if p.Spec.Volumes[i].Name == contract.VolumeStaging {
					p.Spec.Volumes[i].VolumeSource = corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}
				}
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for range 2 {
				require.True(t, create(raw).Allowed, "genuine")
			}
			p := pod.DeepCopy()
			tc.tamper(p)
			require.NotEqual(t, pod, p, "tampered")
			resp := create(admissiontest.MustJSON(t, p))
			require.False(t, resp.Allowed, "tampered pod admitted")
			assert.Contains(t, resp.Result.Message, "seal does not match")
			require.True(t, create(raw).Allowed, "genuine after the tampered one")
		})
	}
}

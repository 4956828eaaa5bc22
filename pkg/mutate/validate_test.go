package mutate

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/warden-dev/warden/pkg/api"
	"github.com/warden-dev/warden/pkg/guard"
)

// injectedRaw runs a pod through the mutating handler and returns it as the API server would
// store it.
func injectedRaw(t *testing.T) (*corev1.Pod, []byte) {
	t.Helper()
	raw := mustJSON(t, basePod("svc-prod-app-1"))
	out := applyPatch(t, raw, admit(t, newTestHandler(t), request("apps", raw)))
	return podFrom(t, out), out
}

func review(op admissionv1.Operation, group, resource, sub string, obj, old []byte) admission.Request {
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID: "uid", Namespace: "apps", Operation: op, SubResource: sub,
		Resource:  metav1.GroupVersionResource{Group: group, Version: "v1", Resource: resource},
		Object:    runtime.RawExtension{Raw: obj},
		OldObject: runtime.RawExtension{Raw: old},
	}}
}

func TestValidator(t *testing.T) {
	v := newTestValidator(t)
	pod, raw := injectedRaw(t)
	withDebug := func(target string, mounts ...corev1.VolumeMount) []byte {
		p := pod.DeepCopy()
		p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
			Name: "dbg", Image: "busybox", VolumeMounts: mounts}, TargetContainerName: target}}
		return mustJSON(t, p)
	}
	resized := pod.DeepCopy()
	resized.Spec.InitContainers[0].Resources = corev1.ResourceRequirements{}
	relabelled := pod.DeepCopy()
	relabelled.Labels["team"] = "ds"
	forged := pod.DeepCopy()
	forged.Spec.InitContainers[0].Image = "evil/sidecar"
	notInjected := mustJSON(t, basePod("svc-prod-app-1"))

	for _, tc := range []struct {
		name   string
		req    admission.Request
		reason string // "" = allowed
	}{
		{"injected pod created", review(admissionv1.Create, "", "pods", "", raw, nil), ""},
		{"forged pod created", review(admissionv1.Create, "", "pods", "", mustJSON(t, forged), nil), guard.ReasonForgedInjection},
		{"pod that skipped injection", review(admissionv1.Create, "", "pods", "", notInjected, nil), guard.ReasonNotInjected},
		{"labels updated", review(admissionv1.Update, "", "pods", "", mustJSON(t, relabelled), raw), ""},
		{"sidecar image updated", review(admissionv1.Update, "", "pods", "", mustJSON(t, forged), raw), guard.ReasonImmutable},
		{"sidecar resized", review(admissionv1.Update, "", "pods", "resize", mustJSON(t, resized), raw), guard.ReasonImmutable},
		{"kubectl debug on the app", review(admissionv1.Update, "", "pods", "ephemeralcontainers", withDebug("app"), raw), ""},
		{"kubectl debug on the sidecar", review(admissionv1.Update, "", "pods", "ephemeralcontainers", withDebug(api.SidecarName), raw), guard.ReasonEphemeral},
		{"kubectl debug with the token", review(admissionv1.Update, "", "pods", "ephemeralcontainers",
			withDebug("app", corev1.VolumeMount{Name: api.VolumeToken, MountPath: "/t"}), raw), guard.ReasonForbiddenMount},
		{"exec into the sidecar", review(admissionv1.Connect, "", "pods", "exec", []byte(`{"kind":"PodExecOptions","container":"warden-sidecar","command":["sh"]}`), nil), guard.ReasonSidecarAccess},
		{"attach to the sidecar", review(admissionv1.Connect, "", "pods", "attach", []byte(`{"kind":"PodAttachOptions","container":"warden-sidecar"}`), nil), guard.ReasonSidecarAccess},
		{"exec into the app", review(admissionv1.Connect, "", "pods", "exec", []byte(`{"kind":"PodExecOptions","container":"app","command":["sh"]}`), nil), ""},
		{"clone of the share", review(admissionv1.Create, "", "persistentvolumeclaims", "", []byte(`{"spec":{"dataSource":{"kind":"PersistentVolumeClaim","name":"warden-snapshots"}}}`), nil), guard.ReasonForbiddenVolume},
		{"other claim", review(admissionv1.Create, "", "persistentvolumeclaims", "", []byte(`{"spec":{"resources":{"requests":{"storage":"1Gi"}}}}`), nil), ""},
		{"snapshot of the share", review(admissionv1.Create, "snapshot.storage.k8s.io", "volumesnapshots", "", []byte(`{"spec":{"source":{"persistentVolumeClaimName":"warden-snapshots"}}}`), nil), guard.ReasonForbiddenVolume},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := newTestValidator(t) // its own counters
			resp := admit(t, v, tc.req)
			if tc.reason == "" {
				assert.True(t, resp.Allowed, "%v", resp.Result)
				return
			}
			require.False(t, resp.Allowed, "admitted")
			assert.EqualValues(t, 403, resp.Result.Code)
			assert.Equal(t, 1.0, counterValue(t, v.metrics.denials.WithLabelValues(tc.reason)), "reason %s counted", tc.reason)
		})
	}

	t.Run("out of scope", func(t *testing.T) {
		req := review(admissionv1.Create, "", "pods", "", notInjected, nil)
		for _, ns := range []string{"plain", "kube-system", "warden-system"} {
			req.Namespace = ns
			assert.True(t, admit(t, v, req).Allowed, ns)
		}
		assert.True(t, admit(t, v, review(admissionv1.Delete, "", "pods", "", nil, raw)).Allowed, "deletion is not judged")
	})
	t.Run("broken input", func(t *testing.T) {
		for _, req := range []admission.Request{
			review(admissionv1.Create, "", "pods", "", []byte(`{`), nil),
			review(admissionv1.Update, "", "pods", "", raw, []byte(`[]`)),
			review(admissionv1.Connect, "", "pods", "exec", []byte(`"x"`), nil),
			review(admissionv1.Create, "", "persistentvolumeclaims", "", []byte(`{"spec":1}`), nil),
		} {
			resp := admit(t, v, req)
			assert.False(t, resp.Allowed)
			assert.EqualValues(t, 400, resp.Result.Code)
		}
	})
}

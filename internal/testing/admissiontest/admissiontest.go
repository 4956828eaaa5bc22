// Package admissiontest holds what the admission handlers' tests share: a policy, namespaces,
// the status keyring replicas share, requests as the API server sends them, and the API
// server's side of a response (the patch applied, the metrics read).
package admissiontest

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/warden-dev/warden/pkg/admission/scope"
	"github.com/warden-dev/warden/pkg/contract"
	"github.com/warden-dev/warden/pkg/guard"
	"github.com/warden-dev/warden/pkg/policy"
)

// PolicyYAML has an owner in each environment and one dataset.
const PolicyYAML = `
owners:
  - serviceAccount: apps/svc-prod-app-1
    environment: prod
    user: integration-test
  - serviceAccount: ws/user-ds-1
    environment: dev
    user: user-ds-1
  - serviceAccount: apps/default
    environment: test
datasets:
  - id: prod-dataset-1
    snapshot: prod/dataset-1/rw
    environments: [prod]
    readers: [user:user-ds-1, serviceAccount:apps/svc-prod-app-1]
`

// OwnNamespace is the webhook's namespace in these tests.
const OwnNamespace = "warden-system"

// StaticPolicy is a policy source that never changes (nil P: no policy in force).
type StaticPolicy struct{ P *policy.Policy }

// View returns the policy.
func (s StaticPolicy) View() policy.View {
	if s.P == nil {
		return nil
	}
	return s.P
}

// Policy parses PolicyYAML.
func Policy(t testing.TB) StaticPolicy {
	t.Helper()
	p, err := policy.Parse([]byte(PolicyYAML))
	require.NoError(t, err)
	return StaticPolicy{p}
}

// StaticNamespaces maps namespace names to their labels.
type StaticNamespaces map[string]map[string]string

// Labels returns a namespace's labels, an error for an unknown one.
func (s StaticNamespaces) Labels(_ context.Context, name string) (map[string]string, error) {
	l, ok := s[name]
	if !ok {
		return nil, fmt.Errorf("namespace %q not found", name)
	}
	return l, nil
}

// OptedIn are the labels of a namespace Warden governs.
var OptedIn = map[string]string{contract.LabelInject: contract.LabelInjectEnabled}

// Namespaces has opted-in namespaces (apps, ws), one that is not (plain), and exempt ones
// labelled as if opted in (kube-system, warden-system).
func Namespaces() StaticNamespaces {
	return StaticNamespaces{
		"apps": OptedIn, "ws": OptedIn, "plain": {}, "kube-system": OptedIn, OwnNamespace: OptedIn,
	}
}

// Keys is the status keyring every test handler shares, as replicas share the Secret.
var Keys = func() *guard.Keyring {
	k, err := guard.NewKeyring(map[string][]byte{"k1": []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		panic(err)
	}
	return k
}()

// Metrics returns handler metrics on their own registry, to read with Count.
func Metrics() (*scope.Metrics, *prometheus.Registry) {
	reg := prometheus.NewRegistry()
	return scope.NewMetrics(reg), reg
}

// Count reads one series of a counter vector (label: its only label's value).
func Count(t testing.TB, reg prometheus.Gatherer, name, label string) float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() == label {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// Request is a pod creation in ns.
func Request(ns string, raw []byte) admission.Request {
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID:       "uid-1",
		Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
		Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
		Namespace: ns,
		Operation: admissionv1.Create,
		Object:    runtime.RawExtension{Raw: raw},
	}}
}

// Admit runs a handler the way controller-runtime's webhook does (Complete renders the patch).
func Admit(t testing.TB, h admission.Handler, req admission.Request) admission.Response {
	t.Helper()
	resp := h.Handle(context.Background(), req)
	require.NoError(t, resp.Complete(req))
	return resp
}

// ApplyPatch applies the response's JSON patch to the raw object, as the API server would.
func ApplyPatch(t testing.TB, raw []byte, resp admission.Response) []byte {
	t.Helper()
	if len(resp.Patch) == 0 {
		return raw
	}
	p, err := jsonpatch.DecodePatch(resp.Patch)
	require.NoError(t, err)
	out, err := p.Apply(raw)
	require.NoError(t, err, "patch %s", resp.Patch)
	return out
}

// MustJSON marshals v.
func MustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

// PatchOps decodes the response's JSON patch, failing on anything but a list of operations.
func PatchOps(t testing.TB, resp admission.Response) []map[string]any {
	t.Helper()
	var ops []map[string]any
	require.NoError(t, json.Unmarshal(resp.Patch, &ops), "patch %s", resp.Patch)
	return ops
}

// BasePod is a one-container pod of service account sa, with a scratch volume.
func BasePod(sa string) *corev1.Pod {
	return &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: "p", Labels: map[string]string{"app": "x"}},
		Spec: corev1.PodSpec{
			ServiceAccountName: sa,
			Containers: []corev1.Container{{
				Name:         "app",
				Image:        "python:3.12",
				Env:          []corev1.EnvVar{{Name: "A", Value: "1"}},
				VolumeMounts: []corev1.VolumeMount{{Name: "scratch", MountPath: "/scratch"}},
			}},
			Volumes: []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
		},
	}
}

// PodFrom decodes a pod.
func PodFrom(t testing.TB, raw []byte) *corev1.Pod {
	t.Helper()
	var p corev1.Pod
	require.NoError(t, json.Unmarshal(raw, &p))
	return &p
}

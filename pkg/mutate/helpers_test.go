package mutate

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/warden-dev/warden/pkg/api"
	"github.com/warden-dev/warden/pkg/guard"
	"github.com/warden-dev/warden/pkg/policy"
)

const testPolicy = `
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

type staticPolicy struct{ p *policy.Policy }

func (s staticPolicy) View() policy.View {
	if s.p == nil {
		return nil
	}
	return s.p
}

type staticNamespaces map[string]map[string]string

func (s staticNamespaces) Labels(_ context.Context, name string) (map[string]string, error) {
	l, ok := s[name]
	if !ok {
		return nil, fmt.Errorf("namespace %q not found", name)
	}
	return l, nil
}

var optedIn = map[string]string{api.LabelInject: api.LabelInjectEnabled}

func testNamespaces() staticNamespaces {
	return staticNamespaces{
		"apps": optedIn, "ws": optedIn, "plain": {}, "kube-system": optedIn, "warden-system": optedIn,
	}
}

// testKeys is the status keyring every test handler shares, as replicas share the Secret.
var testKeys = func() *guard.Keyring {
	k, err := guard.NewKeyring(map[string][]byte{"k1": []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		panic(err)
	}
	return k
}()

func testConfig(mut ...func(*Config)) Config {
	cfg := DefaultConfig()
	cfg.SidecarImage = "example.com/warden-sidecar:test"
	for _, m := range mut {
		m(&cfg)
	}
	return cfg
}

func newTestHandler(t testing.TB, mut ...func(*Config)) *Handler {
	t.Helper()
	p, err := policy.Parse([]byte(testPolicy))
	require.NoError(t, err)
	cfg := testConfig(mut...)
	h, err := NewHandler(cfg, "warden-system", staticPolicy{p}, testNamespaces(), cfg.Rules(testKeys), nil, nil)
	require.NoError(t, err)
	return h
}

func newTestValidator(t testing.TB, mut ...func(*Config)) *Validator {
	t.Helper()
	cfg := testConfig(mut...)
	v, err := NewValidator(cfg, "warden-system", testNamespaces(), cfg.Rules(testKeys), nil, nil)
	require.NoError(t, err)
	return v
}

func request(ns string, raw []byte) admission.Request {
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID:       "uid-1",
		Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
		Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
		Namespace: ns,
		Operation: admissionv1.Create,
		Object:    runtime.RawExtension{Raw: raw},
	}}
}

// admit runs a handler the way controller-runtime's webhook does (Complete renders the patch).
func admit(t testing.TB, h admission.Handler, req admission.Request) admission.Response {
	t.Helper()
	resp := h.Handle(context.Background(), req)
	require.NoError(t, resp.Complete(req))
	return resp
}

// applyPatch applies the response's JSON patch to the raw object, as the API server would.
func applyPatch(t testing.TB, raw []byte, resp admission.Response) []byte {
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

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

func counterValue(t testing.TB, c prometheus.Collector) float64 {
	t.Helper()
	return testutil.ToFloat64(c)
}

// patchOps decodes the response's JSON patch, failing on anything but a list of operations.
func patchOps(t testing.TB, resp admission.Response) []map[string]any {
	t.Helper()
	var ops []map[string]any
	require.NoError(t, json.Unmarshal(resp.Patch, &ops), "patch %s", resp.Patch)
	return ops
}

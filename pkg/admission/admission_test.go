package admission_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrladmission "sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/warden-dev/warden/internal/testing/admissiontest"
	"github.com/warden-dev/warden/pkg/admission"
	"github.com/warden-dev/warden/pkg/admission/mutate"
)

// TestChain runs a pod through the chain as the API server would: the mutating webhook's patch
// applied, then the validating webhook on the result; a pod that skipped mutation is refused.
func TestChain(t *testing.T) {
	cfg := mutate.DefaultConfig()
	cfg.SidecarImage = "example.com/warden-sidecar:test"
	chain, err := admission.Chain(admission.Options{
		Config: cfg, Namespace: admissiontest.OwnNamespace, Policy: admissiontest.Policy(t),
		Namespaces: admissiontest.Namespaces(), Rules: cfg.Rules(admissiontest.Keys),
	})
	require.NoError(t, err)
	require.Len(t, chain, 2)
	assert.Equal(t, []string{admission.MutatePath, admission.ValidatePath}, []string{chain[0].Path, chain[1].Path})

	raw := admissiontest.MustJSON(t, admissiontest.BasePod("svc-prod-app-1"))
	mutated := call(t, chain[0].Handler, raw)
	require.True(t, mutated.Allowed, "%v", mutated.Result)
	require.NotEmpty(t, mutated.Patch)
	injected := admissiontest.ApplyPatch(t, raw, ctrladmission.Response{AdmissionResponse: *mutated})
	assert.True(t, call(t, chain[1].Handler, injected).Allowed, "the injected pod passes validation")
	assert.False(t, call(t, chain[1].Handler, raw).Allowed, "a pod that skipped mutation is refused")

	_, err = admission.Chain(admission.Options{Config: cfg, Namespaces: admissiontest.Namespaces()})
	assert.Error(t, err, "no policy or rules")
}

func call(t *testing.T, h http.Handler, raw []byte) *admissionv1.AdmissionResponse {
	t.Helper()
	req := admissiontest.Request("apps", raw)
	body, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request:  &req.AdmissionRequest,
	})
	require.NoError(t, err)
	r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	var out admissionv1.AdmissionReview
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &out))
	require.NotNil(t, out.Response)
	return out.Response
}

package mutate

import (
	"github.com/warden-dev/warden/internal/testing/admissiontest"
	"os"
	"path/filepath"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	corev1 "k8s.io/api/core/v1"
	sigsjson "sigs.k8s.io/json"
)

// FuzzMutate feeds arbitrary pod JSON through the handler. Whatever comes in, the handler must
// not panic, and when it patches: only add operations, the patch applies to the raw object, the
// patched pod satisfies the pod invariant (pkg/guard, seal verified: the property the validating
// webhook and the broker rely on), the validating webhook admits it, and a second pass over the
// result changes nothing.
func FuzzMutate(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/golden/*.pod.json")
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"spec":{"containers":[{"name":"a","volumeMounts":null,"env":null}],"volumes":null},"metadata":{"annotations":null}}`))
	f.Add([]byte(`{"metadata":{"annotations":{"warden.dev/status":"{}"}},"spec":{"serviceAccountName":"svc-prod-app-1"}}`))
	h := newTestHandler(f)
	val := newTestValidator(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		resp := admissiontest.Admit(t, h, admissiontest.Request("apps", raw))
		// The API server only sends valid pods; the properties below are about those. Anything
		// else only has to leave the handler standing.
		var in corev1.Pod
		if sigsjson.UnmarshalCaseSensitivePreserveInts(raw, &in) != nil || !resp.Allowed || len(resp.Patch) == 0 {
			return
		}
		for _, op := range admissiontest.PatchOps(t, resp) {
			if op["op"] != "add" {
				t.Fatalf("non-add operation %v", op)
			}
		}
		p, err := jsonpatch.DecodePatch(resp.Patch)
		if err != nil {
			t.Fatal(err)
		}
		out, err := p.Apply(raw)
		if err != nil {
			t.Fatalf("patch does not apply: %v\npatch: %s\nraw: %s", err, resp.Patch, raw)
		}
		var pod corev1.Pod
		// Case-sensitive, like the API server (encoding/json would read "serviCeACCount" as a field).
		if err := sigsjson.UnmarshalCaseSensitivePreserveInts(out, &pod); err != nil {
			t.Fatalf("patched object is not a pod: %v", err)
		}
		if _, v := h.rules.Check("apps", &pod); v != nil {
			t.Fatalf("admitted pod breaks the invariant: %v\npatch: %s\nraw: %s", v, resp.Patch, raw)
		}
		if final := admissiontest.Admit(t, val, admissiontest.Request("apps", out)); !final.Allowed {
			t.Fatalf("validating webhook refuses the injected pod: %v", final.Result)
		}
		again := admissiontest.Admit(t, h, admissiontest.Request("apps", out))
		if !again.Allowed || len(again.Patch) != 0 {
			t.Fatalf("second pass not empty: allowed=%v patch=%s result=%v\npod: %s", again.Allowed, again.Patch, again.Result, out)
		}
	})
}

package mutate

import (
	"testing"

	"github.com/warden-dev/warden/internal/testing/podfixture"
	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// BenchmarkHandle measures one admission decision as controller-runtime runs it: decode the
// pod, check it, build the patch and render it to JSON (Complete).
// Run: go test ./pkg/mutate -run '^$' -bench Handle -benchmem
func BenchmarkHandle(b *testing.B) {
	for _, bc := range []struct {
		name string
		raw  []byte
	}{
		{"realistic-3c-10env-5vol", mustJSON(b, podfixture.Realistic("svc-prod-app-1"))},
		{"large-20c", mustJSON(b, podfixture.Large("svc-prod-app-1"))},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h := newTestHandler(b)
			req := request("apps", bc.raw)
			if resp := admit(b, h, req); !resp.Allowed || len(resp.Patch) == 0 {
				b.Fatalf("fixture not injected: %v", resp.Result)
			}
			b.SetBytes(int64(len(bc.raw)))
			b.ReportAllocs()
			for b.Loop() {
				resp := h.Handle(b.Context(), req)
				if err := resp.Complete(req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkReinvocation is the second pass over an injected pod (verify, empty patch).
func BenchmarkReinvocation(b *testing.B) {
	h := newTestHandler(b)
	raw := mustJSON(b, podfixture.Realistic("svc-prod-app-1"))
	injected := applyPatch(b, raw, admit(b, h, request("apps", raw)))
	req := request("apps", injected)
	b.ReportAllocs()
	for b.Loop() {
		resp := h.Handle(b.Context(), req)
		if len(resp.Patch) != 0 {
			b.Fatal("not empty")
		}
	}
}

// BenchmarkInvariant is the share of BenchmarkHandle spent on pkg/guard's invariant: the pod as
// written, then the pod as the patch leaves it.
func BenchmarkInvariant(b *testing.B) {
	h := newTestHandler(b)
	pod, err := decodePod(mustJSON(b, podfixture.Realistic("svc-prod-app-1")))
	if err != nil {
		b.Fatal(err)
	}
	r := h.plans.get(&h.cfg, "apps/svc-prod-app-1", "prod", "app")
	annotation, err := h.rules.Keys.Annotate(r.status, r.parts)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if v := h.rules.Fresh("apps", pod, r.appMount.SubPath); v != nil {
			b.Fatal(v)
		}
		if _, v := h.rules.CheckOwn("apps", h.cfg.injected(pod, r, annotation), r.status); v != nil {
			b.Fatal(v)
		}
	}
}

// BenchmarkValidate is the validating webhook on the final pod (full decode, seal verified) and
// on an update (old against new).
func BenchmarkValidate(b *testing.B) {
	h, v := newTestHandler(b), newTestValidator(b)
	raw := mustJSON(b, podfixture.Realistic("svc-prod-app-1"))
	injected := applyPatch(b, raw, admit(b, h, request("apps", raw)))
	create := request("apps", injected)
	update := request("apps", injected)
	update.Operation, update.OldObject = admissionv1.Update, runtime.RawExtension{Raw: injected}
	for name, req := range map[string]admission.Request{"create": create, "update": update} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if resp := v.Handle(b.Context(), req); !resp.Allowed {
					b.Fatal(resp.Result)
				}
			}
		})
	}
}

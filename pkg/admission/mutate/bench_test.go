package mutate

import (
	"github.com/warden-dev/warden/internal/testing/admissiontest"
	"testing"

	"github.com/warden-dev/warden/internal/testing/podfixture"
)

// BenchmarkHandle measures one admission decision as controller-runtime runs it: decode the
// pod, check it, build the patch and render it to JSON (Complete).
// Run: go test ./pkg/admission/mutate -run '^$' -bench Handle -benchmem
func BenchmarkHandle(b *testing.B) {
	for _, bc := range []struct {
		name string
		raw  []byte
	}{
		{"realistic-3c-10env-5vol", admissiontest.MustJSON(b, podfixture.Realistic("svc-prod-app-1"))},
		{"large-20c", admissiontest.MustJSON(b, podfixture.Large("svc-prod-app-1"))},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h := newTestHandler(b)
			req := admissiontest.Request("apps", bc.raw)
			if resp := admissiontest.Admit(b, h, req); !resp.Allowed || len(resp.Patch) == 0 {
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
	raw := admissiontest.MustJSON(b, podfixture.Realistic("svc-prod-app-1"))
	injected := admissiontest.ApplyPatch(b, raw, admissiontest.Admit(b, h, admissiontest.Request("apps", raw)))
	req := admissiontest.Request("apps", injected)
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
	decoded, err := decodePod(b.Context(), admissiontest.MustJSON(b, podfixture.Realistic("svc-prod-app-1")))
	if err != nil {
		b.Fatal(err)
	}
	pod := decoded.Pod
	r := h.plans.get(&h.cfg, "apps/svc-prod-app-1", "prod", "app")
	annotation, err := h.rules.Keys.Annotate(r.status, r.parts)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		// inject works in place: each round judges a fresh copy of the decoded pod.
		b.StopTimer()
		p := pod.DeepCopy()
		b.StartTimer()
		if v := h.rules.Fresh("apps", p, r.appMount.SubPath); v != nil {
			b.Fatal(v)
		}
		if _, v := h.rules.CheckOwn("apps", h.cfg.inject(p, r, annotation), r.status); v != nil {
			b.Fatal(v)
		}
	}
}

package mutate

import (
	"testing"

	"github.com/warden-dev/warden/internal/podfixture"
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

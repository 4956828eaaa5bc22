package validate

import (
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/warden-dev/warden/internal/testing/admissiontest"
	"github.com/warden-dev/warden/internal/testing/podfixture"
)

// BenchmarkValidate is the validating webhook on the final pod (full decode, seal verified) and
// on an update (old against new).
func BenchmarkValidate(b *testing.B) {
	v := newTestValidator(b, nil)
	injected := inject(b, podfixture.Realistic("svc-prod-app-1"))
	create := admissiontest.Request("apps", injected)
	update := admissiontest.Request("apps", injected)
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

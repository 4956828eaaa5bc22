package review

import (
	"encoding/json"
	"testing"

	"github.com/warden-dev/warden/internal/testing/podfixture"
)

// BenchmarkReadPod is the pod read alone, on the pods of make bench-compare.
func BenchmarkReadPod(b *testing.B) {
	for name, pod := range map[string]any{
		"realistic": podfixture.Annotated(podfixture.Realistic("svc")),
		"large":     podfixture.Annotated(podfixture.Large("svc")),
	} {
		raw, err := json.Marshal(pod)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ReadPod(raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

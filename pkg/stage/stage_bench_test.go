package stage

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
)

// The stage benchmarks are for profiling (go test -bench Stage -cpuprofile); the figures the
// issue asks for, against cp and over HTTP, come from hack/sidecarbench (make bench-sidecar).
func BenchmarkStage(b *testing.B) {
	for _, tc := range []struct {
		name   string
		size   int
		noSync bool
	}{{"4KiB", 4 << 10, false}, {"4KiB-nosync", 4 << 10, true}, {"64MiB", 64 << 20, false}} {
		b.Run(tc.name, func(b *testing.B) {
			f := newFixture(b)
			data := make([]byte, tc.size)
			_, _ = rand.Read(data)
			if err := os.WriteFile(filepath.Join(f.share, snapDir, "bench.bin"), data, 0o644); err != nil {
				b.Fatal(err)
			}
			s := newStager(b, f, func(c *Config) { c.NoSync = tc.noSync })
			b.SetBytes(int64(tc.size))
			b.ReportAllocs()
			for b.Loop() {
				m, err := s.Stage(context.Background(), req("bench.bin"))
				if err != nil {
					b.Fatal(err)
				}
				if _, err := s.Delete(m.Name, m.CallerDir); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

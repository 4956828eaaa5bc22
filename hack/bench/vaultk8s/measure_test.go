package vaultk8s

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's user+system CPU so far: garbage collection runs on other cores
// beside the handler, and the figures are CPU, not wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// vaultCPU is vault-k8s's CPU per operation on each pod, measured first in the same run, so the
// Warden sub-benchmarks that follow report their ratio to it.
var vaultCPU = map[string]float64{}

// loop runs bodies through handlers in turn (one operation: all of them, as the API server
// sends a pod to each webhook) and returns the CPU per operation.
func loop(b *testing.B, hs []http.Handler, bodies [][]byte) float64 {
	b.ReportAllocs()
	b.SetBytes(int64(len(bodies[0])))
	start := cpuTime()
	for b.Loop() {
		for i, h := range hs {
			w := httptest.NewRecorder()
			r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(bodies[i]))
			r.Header.Set("Content-Type", "application/json")
			h.ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				b.Fatalf("status %d: %s", w.Code, w.Body.Bytes())
			}
		}
	}
	cpu := float64(cpuTime()-start) / float64(b.N)
	b.ReportMetric(cpu, "cpu-ns/op")
	return cpu
}

// BenchmarkCompare measures, per pod: vault-k8s's injector, then Warden's mutating webhook,
// its validating webhook on the injected pod, and both (the two calls the API server makes per
// pod), each with its CPU per pod as a multiple of vault-k8s's (x-vault). Ratios of CPU, not
// wall time: on a shared machine wall time includes waiting for a core.
func BenchmarkCompare(b *testing.B) {
	for _, f := range fixtures(b) {
		b.Run(f.name+"/vault-k8s", func(b *testing.B) {
			vaultCPU[f.name] = loop(b, []http.Handler{f.vault}, [][]byte{f.create})
		})
		for _, side := range []struct {
			name   string
			hs     []http.Handler
			bodies [][]byte
		}{
			{"warden-mutate", []http.Handler{f.mutate}, [][]byte{f.create}},
			{"warden-validate", []http.Handler{f.valid}, [][]byte{f.final}},
			{"warden-mutate+validate", []http.Handler{f.mutate, f.valid}, [][]byte{f.create, f.final}},
		} {
			b.Run(f.name+"/"+side.name, func(b *testing.B) {
				cpu := loop(b, side.hs, side.bodies)
				if v := vaultCPU[f.name]; v > 0 {
					b.ReportMetric(cpu/v, "x-vault")
				}
			})
		}
	}
}

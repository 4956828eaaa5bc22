package app

import (
	"runtime"
	"runtime/debug"
	"testing"
)

func TestTuneRuntime(t *testing.T) {
	rate, percent := runtime.MemProfileRate, debug.SetGCPercent(100)
	t.Cleanup(func() { runtime.MemProfileRate = rate; debug.SetGCPercent(percent) })

	TuneRuntime()
	if runtime.MemProfileRate != 0 {
		t.Errorf("MemProfileRate = %d, want 0", runtime.MemProfileRate)
	}
	if got := debug.SetGCPercent(100); got != gcPercent {
		t.Errorf("GC percent = %d, want %d", got, gcPercent)
	}

	t.Setenv("GOGC", "100") // the operator's choice wins
	TuneRuntime()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("with GOGC set, GC percent = %d, want it left at 100", got)
	}
}

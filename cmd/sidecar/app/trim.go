package app

import (
	"context"
	"net/http"
	"runtime/debug"
	"sync/atomic"
	"time"
)

// trimAfter is how long the API stays quiet after a burst before the sidecar hands the burst's
// memory back to the kernel.
const trimAfter = 5 * time.Second

// idleTrim returns the memory a burst of requests leaves behind once the API has been quiet for
// trimAfter. What a burst grows is transient, not state (a copy is tracked by ~150 bytes): the
// garbage the collector has not yet needed to collect (at the runtime's 4 MiB minimum heap, about
// as much again as is live), the connection goroutines' stacks as the handlers grew them, and
// heap pages the runtime keeps for the next burst. Left to the runtime, that stays until its
// two-minute forced collection and its slow background scavenger. A sidecar in every pod is
// counted once per pod, so it gives it back at once: one full collection, which also shrinks the
// idle connections' stacks, then every free page returned (debug.FreeOSMemory) — about a
// millisecond on a heap this small, once per burst, never while requests arrive.
type idleTrim struct {
	last  atomic.Int64 // UnixNano of the latest request
	dirty atomic.Bool  // a request arrived since the last trim
	free  func()       // debug.FreeOSMemory; tests count the calls
}

func newIdleTrim() *idleTrim { return &idleTrim{free: debug.FreeOSMemory} }

// wrap notes every request h serves.
func (t *idleTrim) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		t.last.Store(time.Now().UnixNano())
		t.dirty.Store(true)
	})
}

// tick trims if requests came since the last trim and none for trimAfter before now.
func (t *idleTrim) tick(now time.Time) bool {
	if !t.dirty.Load() || now.Sub(time.Unix(0, t.last.Load())) < trimAfter {
		return false
	}
	t.dirty.Store(false)
	t.free()
	return true
}

// run ticks every second until ctx ends.
func (t *idleTrim) run(ctx context.Context) {
	tk := time.NewTicker(time.Second)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tk.C:
			t.tick(now)
		}
	}
}

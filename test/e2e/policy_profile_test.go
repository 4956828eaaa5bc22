package e2e

import (
	"bufio"
	"net/http"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
)

// writeHeapProfile writes the test process's heap profile to $POLICY_HEAPPROFILE, once the
// replica has synced: what the cache and its indexes hold, by allocation site (go tool pprof
// -sample_index=inuse_space). The suite's own webhook holds a copy of the same objects.
func writeHeapProfile(b *testing.B) {
	path := os.Getenv("POLICY_HEAPPROFILE")
	if path == "" {
		return
	}
	f, err := os.Create(path)
	must(b, err)
	defer f.Close()
	must(b, pprof.Lookup("heap").WriteTo(f, 0))
}

// logRuntimeMemory logs the webhook binary's Go memory figures from its /metrics: how much of
// its resident memory is live heap, and how much is heap the runtime has not returned yet.
func logRuntimeMemory(b *testing.B, health string) {
	resp, err := http.Get("http://" + health + "/metrics")
	must(b, err)
	defer resp.Body.Close()
	want := map[string]bool{"go_memstats_heap_inuse_bytes": true, "go_memstats_heap_idle_bytes": true,
		"go_memstats_heap_released_bytes": true, "go_memstats_sys_bytes": true, "go_memstats_stack_inuse_bytes": true}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if !ok || !want[name] {
			continue
		}
		f, err := strconv.ParseFloat(v, 64)
		must(b, err)
		b.Logf("webhook binary %s = %.1f MB", name, f/(1<<20))
	}
	must(b, sc.Err())
}

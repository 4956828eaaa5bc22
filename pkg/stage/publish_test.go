package stage

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// Every caller returns only after an fsync that started after it called; callers that arrive
// together share fsyncs.
func TestDirSyncerCoalesces(t *testing.T) {
	for _, tc := range []struct {
		name    string
		callers int
		dirs    []string
	}{
		{"one caller", 1, []string{"a"}},
		{"many callers, one folder", 40, []string{"a"}},
		{"many callers, two folders", 40, []string{"a", "b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var seq, fsyncs atomic.Int64
			var d dirSyncer
			d.fsync = func(string) {
				seq.Add(1) // an fsync starts: it covers every call counted before
				fsyncs.Add(1)
				time.Sleep(2 * time.Millisecond)
			}
			var wg sync.WaitGroup
			for i := range tc.callers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					before := seq.Load()
					d.sync(tc.dirs[i%len(tc.dirs)])
					assert.Greater(t, seq.Load(), before, "returned without an fsync started after the call")
				}()
			}
			wg.Wait()
			assert.GreaterOrEqual(t, fsyncs.Load(), int64(len(tc.dirs)))
			if tc.callers > 1 {
				assert.Less(t, fsyncs.Load(), int64(tc.callers), "concurrent callers share fsyncs")
			}
			assert.Empty(t, d.dirs, "idle folders are forgotten")
		})
	}
}

package stage

import (
	"context"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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

// A stage answers once its bytes and metadata are durable and its name is visible, without
// waiting for the folder's fsync; stopping the stager waits for that fsync.
func TestStageAnswersBeforeFolderFsync(t *testing.T) {
	f := newFixture(t)
	s := newStager(t, f)
	release := make(chan struct{})
	var synced atomic.Int64
	s.dirs.fsync = func(string) {
		<-release
		synced.Add(1)
	}
	m, err := s.Stage(context.Background(), req("a.csv"))
	require.NoError(t, err)
	_, err = os.Stat(m.Target)
	require.NoError(t, err, "the copy is visible when Stage returns")
	assert.Zero(t, synced.Load(), "Stage returned before the folder's fsync finished")

	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { s.Run(ctx); close(stopped) }()
	cancel()
	select {
	case <-stopped:
		t.Fatal("Run returned with a folder fsync still running")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	<-stopped
	assert.Equal(t, int64(1), synced.Load())
}

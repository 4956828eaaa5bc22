package stage

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMain lets the test binary play the sidecar process that gets killed.
func TestMain(m *testing.M) {
	if base := os.Getenv("WARDEN_STAGE_CHILD"); base != "" {
		childMain(base)
		return
	}
	os.Exit(m.Run())
}

func fixtureAt(base string) fixture {
	return fixture{base: base, share: filepath.Join(base, "share"), staging: filepath.Join(base, "staging"), state: filepath.Join(base, "state")}
}

// childMain stages two copies and starts a third, large one, then waits to be killed.
func childMain(base string) {
	f := fixtureAt(base)
	s, err := New(f.config(), nil, nil)
	if err != nil {
		panic(err)
	}
	go s.Run(context.Background())
	short := req("a.csv")
	short.TTL = 5 * time.Second
	ms, err := s.Stage(context.Background(), short)
	if err != nil {
		panic(err)
	}
	long := req("dir/b.txt")
	long.TTL = time.Hour
	ml, err := s.Stage(context.Background(), long)
	if err != nil {
		panic(err)
	}
	_ = json.NewEncoder(os.Stdout).Encode([]*Meta{ms, ml})
	go func() { _, _ = s.Stage(context.Background(), req("big.bin")) }()
	select {}
}

func TestJanitorSurvivesKill9(t *testing.T) {
	f := newFixture(t)
	require.NoError(t, os.WriteFile(filepath.Join(f.share, snapDir, "big.bin"), make([]byte, 64<<20), 0o644))
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "WARDEN_STAGE_CHILD="+f.base)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	var metas []*Meta
	require.NoError(t, json.NewDecoder(bufio.NewReader(out)).Decode(&metas))
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()
	short, long := metas[0], metas[1]
	for _, m := range metas {
		_, err := os.Stat(m.Target)
		require.NoError(t, err, "copies survive the kill")
	}

	// Restart: the schedule comes back from the metadata.
	s := newStager(t, f)
	_, n := s.Usage()
	// The large copy was usually cut off by the kill (and then cleaned up below); if it won the
	// race it is a complete, tracked copy, which is just as correct.
	assert.Contains(t, []int{2, 3}, n, "both copies known again")
	s.mu.Lock()
	assert.Contains(t, s.files, short.Name)
	assert.Contains(t, s.files, long.Name)
	s.mu.Unlock()
	tmps, _ := os.ReadDir(filepath.Join(f.staging, ".warden-tmp"))
	assert.Empty(t, tmps, "half-written copies removed")
	if time.Now().Before(short.ExpiresAt) {
		_, err := os.Stat(short.Target)
		assert.NoError(t, err, "not removed before its time")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Run(ctx)
	waitGone(t, short)
	assert.False(t, time.Now().Before(short.ExpiresAt), "removed before its expiry")
	_, err = os.Stat(long.Target)
	assert.NoError(t, err, "the hour-long copy stays")
	_, err = os.Stat(filepath.Join(f.state, short.Name+".json"))
	assert.True(t, os.IsNotExist(err), "its metadata went with it")
}

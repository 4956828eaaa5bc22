package stage

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
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
	if base := os.Getenv("WARDEN_STAGE_NONROOT"); base != "" {
		nonRootMain(base)
		return
	}
	if base := os.Getenv("WARDEN_STAGE_CRASH_AT"); base != "" {
		crashMain(base, os.Getenv("WARDEN_STAGE_CRASH_STEP"))
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
	// The janitor removes the copy, then its metadata (a crash between the two leaves metadata
	// that the next start cleans up, never a copy nobody tracks): wait for the second step too.
	waitPathGone(t, filepath.Join(f.state, short.Name+".json"))
}

// nonRootMain starts a stager and stages one file, as the sidecar does at pod start.
func nonRootMain(base string) {
	s, err := New(fixtureAt(base).config(), nil, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if _, err := s.Stage(context.Background(), req("a.csv")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// The kubelet makes emptyDir roots root-owned with mode 0777, and the sidecar runs as UID 65532
// with every capability dropped: it must start on such volumes without changing their mode.
func TestStartsOnKubeletOwnedVolumeRoots(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make root-owned volume roots and drop to another user")
	}
	f := newFixture(t)
	for _, d := range []string{f.base, f.staging, f.state} {
		require.NoError(t, os.MkdirAll(d, 0o777))
		require.NoError(t, os.Chmod(d, 0o777))
	}
	require.NoError(t, os.Chmod(filepath.Join(f.base, ".."), 0o755))
	// The test binary lives in a directory only root may enter; run a copy.
	bin := filepath.Join(f.base, "stage.test")
	self, err := os.ReadFile(os.Args[0])
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(bin, self, 0o755))
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = append(os.Environ(), "WARDEN_STAGE_NONROOT="+f.base)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65532, Gid: 65532}}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "sidecar as uid 65532 on root-owned 0777 volumes: %s", out)
	fi, err := os.Stat(f.state)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o777), fi.Mode().Perm(), "the volume root keeps the kubelet's mode")
}

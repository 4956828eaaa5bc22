package policy

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func ownerPolicy(sa string) string {
	return fmt.Sprintf("owners:\n  - serviceAccount: %s\n    environment: dev\n", sa)
}

// configMapDir lays files out the way the kubelet does for a ConfigMap volume and swaps them
// the way it does on update: a new timestamped directory, a "..data" symlink renamed over the
// old one, and the old directory removed.
type configMapDir struct {
	t   *testing.T
	dir string
	gen int
}

func newConfigMapDir(t *testing.T, content string) *configMapDir {
	c := &configMapDir{t: t, dir: t.TempDir()}
	c.swap(content)
	require.NoError(t, os.Symlink("..data/policy.yaml", filepath.Join(c.dir, "policy.yaml")))
	return c
}

func (c *configMapDir) swap(content string) {
	c.t.Helper()
	c.gen++
	ts := fmt.Sprintf("..2026_11_25_%d", c.gen)
	require.NoError(c.t, os.Mkdir(filepath.Join(c.dir, ts), 0o755))
	require.NoError(c.t, os.WriteFile(filepath.Join(c.dir, ts, "policy.yaml"), []byte(content), 0o644))
	tmp := filepath.Join(c.dir, "..data_tmp")
	require.NoError(c.t, os.Symlink(ts, tmp))
	require.NoError(c.t, os.Rename(tmp, filepath.Join(c.dir, "..data")))
	if c.gen > 1 {
		require.NoError(c.t, os.RemoveAll(filepath.Join(c.dir, fmt.Sprintf("..2026_11_25_%d", c.gen-1))))
	}
}

func (c *configMapDir) file() string { return filepath.Join(c.dir, "policy.yaml") }

// waitFor blocks until cond holds after a reload, failing the test after a generous deadline
// (the deadline only stops a hung test; it asserts nothing about speed).
func waitFor(t *testing.T, changed <-chan struct{}, cond func() bool) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for !cond() {
		select {
		case <-changed:
		case <-deadline:
			t.Fatal("condition not reached after reloads")
		}
	}
}

func startStore(t *testing.T, file string) (*Store, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	s, err := NewStore(file, slog.New(slog.DiscardHandler), reg, WithResync(time.Hour))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); assert.NoError(t, s.Run(ctx)) }()
	t.Cleanup(func() { cancel(); <-done })
	return s, reg
}

func hasOwner(s *Store, sa string) bool {
	p := s.Current()
	if p == nil {
		return false
	}
	_, ok := p.Owner(sa)
	return ok
}

func TestStoreConfigMapSwaps(t *testing.T) {
	cm := newConfigMapDir(t, ownerPolicy("apps/one"))
	s, _ := startStore(t, cm.file())
	changed := s.Changed()
	require.True(t, hasOwner(s, "apps/one"))
	ok, msg := s.Status()
	assert.True(t, ok, msg)
	assert.Equal(t, 1.0, testutil.ToFloat64(s.healthy))

	cm.swap(ownerPolicy("apps/two"))
	waitFor(t, changed, func() bool { return hasOwner(s, "apps/two") })
	assert.False(t, hasOwner(s, "apps/one"))

	// A broken edit keeps the last good policy and says which file and line are wrong.
	cm.swap("owners:\n  - serviceAccount: apps/three\n    environment: staging\n")
	waitFor(t, changed, func() bool { ok, _ := s.Status(); return !ok })
	assert.True(t, hasOwner(s, "apps/two"), "last good policy still served")
	assert.False(t, hasOwner(s, "apps/three"))
	ok, msg = s.Status()
	assert.False(t, ok)
	assert.Contains(t, msg, cm.file())
	assert.Contains(t, msg, "line 2")
	assert.Contains(t, msg, "serving the last good policy")
	assert.Equal(t, 0.0, testutil.ToFloat64(s.healthy))
	assert.Equal(t, 1.0, testutil.ToFloat64(s.reloads.WithLabelValues("failure")))

	cm.swap(ownerPolicy("apps/four"))
	waitFor(t, changed, func() bool { return hasOwner(s, "apps/four") })
	ok, _ = s.Status()
	assert.True(t, ok)
	assert.Equal(t, 1.0, testutil.ToFloat64(s.healthy))
}

func TestStorePlainFileEdits(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.WriteFile(file, []byte(ownerPolicy("apps/one")), 0o644))
	s, _ := startStore(t, file)
	changed := s.Changed()

	// In-place write.
	require.NoError(t, os.WriteFile(file, []byte(ownerPolicy("apps/two")), 0o644))
	waitFor(t, changed, func() bool { return hasOwner(s, "apps/two") })

	// Editor-style: write a temporary file and rename it over the original.
	tmp := filepath.Join(dir, ".policy.yaml.swp")
	require.NoError(t, os.WriteFile(tmp, []byte(ownerPolicy("apps/three")), 0o644))
	require.NoError(t, os.Rename(tmp, file))
	waitFor(t, changed, func() bool { return hasOwner(s, "apps/three") })

	// Deleted: keep serving, report it.
	require.NoError(t, os.Remove(file))
	waitFor(t, changed, func() bool { ok, _ := s.Status(); return !ok })
	assert.True(t, hasOwner(s, "apps/three"))
}

func TestStoreBrokenAtStart(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "policy.yaml")
	s, _ := startStore(t, file) // missing
	changed := s.Changed()
	assert.Nil(t, s.Current())
	ok, msg := s.Status()
	assert.False(t, ok)
	assert.Contains(t, msg, "no good policy was ever loaded")

	require.NoError(t, os.WriteFile(file, []byte("owners: [broken"), 0o644))
	waitFor(t, changed, func() bool { _, m := s.Status(); return m != msg })
	assert.Nil(t, s.Current())

	require.NoError(t, os.WriteFile(file, []byte(ownerPolicy("apps/one")), 0o644))
	waitFor(t, changed, func() bool { return hasOwner(s, "apps/one") })
}

func TestStoreResyncWithoutEvents(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.WriteFile(file, []byte(ownerPolicy("apps/one")), 0o644))
	s, err := NewStore(file, slog.New(slog.DiscardHandler), nil)
	require.NoError(t, err)
	// No Run: only an explicit (periodic) Reload sees the change.
	require.NoError(t, os.WriteFile(file, []byte(ownerPolicy("apps/two")), 0o644))
	assert.True(t, hasOwner(s, "apps/one"))
	s.Reload()
	assert.True(t, hasOwner(s, "apps/two"))
}

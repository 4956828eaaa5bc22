package stage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warden-dev/warden/pkg/contract"
)

const (
	snapDir   = "prod/ds/rw"
	aContent  = "id,value\n1,42\n"
	bContent  = "inner file\n"
	secret    = "TOP SECRET: another dataset\n"
	outsideSc = "OUTSIDE THE SHARE\n"
)

type fixture struct {
	base, share, staging, state string
}

// newFixture lays out a share with one dataset snapshot and every kind of trap next to it.
func newFixture(t testing.TB) fixture {
	t.Helper()
	base := t.TempDir()
	f := fixture{base: base, share: filepath.Join(base, "share"), staging: filepath.Join(base, "staging"), state: filepath.Join(base, "state")}
	snap := filepath.Join(f.share, snapDir)
	must := func(err error) {
		t.Helper()
		require.NoError(t, err)
	}
	must(os.MkdirAll(filepath.Join(snap, "dir"), 0o755))
	must(os.MkdirAll(filepath.Join(f.share, "prod/other"), 0o755))
	must(os.WriteFile(filepath.Join(snap, "a.csv"), []byte(aContent), 0o644))
	must(os.WriteFile(filepath.Join(snap, "dir/b.txt"), []byte(bContent), 0o644))
	must(os.WriteFile(filepath.Join(f.share, "prod/other/secret.txt"), []byte(secret), 0o644))
	must(os.WriteFile(filepath.Join(base, "outside.txt"), []byte(outsideSc), 0o644))
	must(os.Symlink("a.csv", filepath.Join(snap, "inside-link")))
	must(os.Symlink("../../other/secret.txt", filepath.Join(snap, "escape-link")))
	must(os.Symlink(filepath.Join(base, "outside.txt"), filepath.Join(snap, "abs-link")))
	must(os.Symlink("../..", filepath.Join(snap, "dir-escape")))
	must(os.Symlink("/etc", filepath.Join(snap, "etc-link")))
	must(os.Symlink("..", filepath.Join(snap, "dotdot-link")))
	must(os.Symlink("loop-b", filepath.Join(snap, "loop-a")))
	must(os.Symlink("loop-a", filepath.Join(snap, "loop-b")))
	must(syscall.Mkfifo(filepath.Join(snap, "pipe"), 0o644))
	must(os.Link(filepath.Join(f.share, "prod/other/secret.txt"), filepath.Join(snap, "hard")))
	// A character device, when the test may create one (root in a container usually can).
	_ = syscall.Mknod(filepath.Join(snap, "dev-null"), syscall.S_IFCHR|0o666, 1<<8|3)
	return f
}

func (f fixture) config() Config {
	return Config{
		SnapshotRoot: f.share, StagingRoot: f.staging, StateDir: f.state,
		Owner: "apps/svc-prod-app-1", Environment: "prod", Workload: contract.WorkloadApp,
		DefaultTTL: 300 * time.Second, MaxTTL: time.Hour,
	}
}

func newStager(t testing.TB, f fixture, mut ...func(*Config)) *Stager {
	t.Helper()
	cfg := f.config()
	for _, m := range mut {
		m(&cfg)
	}
	s, err := New(cfg, nil, nil)
	require.NoError(t, err)
	return s
}

func req(path string) Request {
	return Request{Dataset: "ds", SnapshotDir: snapDir, Path: path, Caller: "user-ds-1", CallerDir: "user=user-ds-1"}
}

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func TestStageCopiesFile(t *testing.T) {
	f := newFixture(t)
	s := newStager(t, f)
	m, err := s.Stage(context.Background(), req("dir/b.txt"))
	require.NoError(t, err)
	got, err := os.ReadFile(m.Target)
	require.NoError(t, err)
	assert.Equal(t, bContent, string(got))
	assert.Equal(t, sum(bContent), m.SHA256)
	assert.EqualValues(t, len(bContent), m.Size)
	assert.Equal(t, filepath.Join(f.staging, "prod/apps.svc-prod-app-1/user=user-ds-1", m.Name), m.Target)
	assert.Equal(t, "/secure/datasets/data/user=user-ds-1/"+m.Name, m.AppPath)
	assert.True(t, strings.HasSuffix(m.Name, "-b.txt"), "keeps the extension: %s", m.Name)
	fi, err := os.Stat(m.Target)
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o644), fi.Mode().Perm(), "readable by app containers running as other users")
	assert.WithinDuration(t, m.Created.Add(300*time.Second), m.ExpiresAt, 0)

	meta, err := os.ReadFile(filepath.Join(f.state, m.Name+".json"))
	require.NoError(t, err)
	for _, field := range []string{`"source":"dir/b.txt"`, `"snapshot_dir":"prod/ds/rw"`, `"owner":"apps/svc-prod-app-1"`, `"caller":"user-ds-1"`, `"ttl_seconds":300`, `"sha256":"` + m.SHA256} {
		assert.Contains(t, string(meta), field)
	}

	// Symlinks that stay inside the snapshot are fine.
	m2, err := s.Stage(context.Background(), req("inside-link"))
	require.NoError(t, err)
	assert.Equal(t, sum(aContent), m2.SHA256)
}

func TestWorkspaceLayout(t *testing.T) {
	f := newFixture(t)
	s := newStager(t, f, func(c *Config) {
		c.Workload = contract.WorkloadWorkspace
		c.Owner = "ws/user-ds-1"
		c.Environment = "dev"
	})
	own := req("a.csv")
	own.CallerDir = CallerDir("ws/user-ds-1", "")
	m, err := s.Stage(context.Background(), own)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(f.staging, "dev/ws.user-ds-1/ws.user-ds-1", m.Name), m.Target)
	assert.Equal(t, "/secure/datasets/data/"+m.Name, m.AppPath)
	_, err = s.Stage(context.Background(), req("a.csv"))
	assert.ErrorIs(t, err, ErrForbidden, "a workspace stages only for its owner")
}

// hostilePaths must all be refused, whatever the reason.
var hostilePaths = []string{
	"", ".", "..", "../", "./a.csv", "a.csv/", "/etc/passwd", "//etc/passwd", "/", "dir/../a.csv",
	"../secret.txt", "../../other/secret.txt", "../../../outside.txt", "dir/../../other/secret.txt",
	"dir/./b.txt", "dir//b.txt", "a.csv\x00.txt", "\x00", "..\\..\\other\\secret.txt", "dir\\b.txt",
	"escape-link", "abs-link", "dir-escape/other/secret.txt", "dir-escape", "etc-link/passwd",
	"etc-link/shadow", "dotdot-link/other/secret.txt", "dotdot-link", "loop-a", "pipe", "hard",
	"dir", "dir/", "nonexistent", "dir/nonexistent", "a.csv/x", "....//secret.txt", ".../secret.txt",
	"dir/...", "\u2025/other/secret.txt", "a.csv\n", "\t", "C:\\Windows\\win.ini", "~/.ssh/id_rsa",
	"$HOME/.bashrc", strings.Repeat("a/", 3000) + "a", strings.Repeat("../", 100) + "etc/passwd",
	"/proc/self/environ", "proc/self/root/etc/passwd", "\xff\xfe", " ../secret.txt", "dir/b.txt/",
	"%2e%2e/%2e%2e/other/secret.txt", "..%2f..%2fother%2fsecret.txt", "dev-null", "dir/../../../../etc/passwd",
	"./../other/secret.txt", "a.csv/..", "inside-link/..", "dir/\x7f", "\r\n",
}

func TestTraversalCorpus(t *testing.T) {
	require.GreaterOrEqual(t, len(hostilePaths), 50)
	f := newFixture(t)
	s := newStager(t, f)
	before := snapshotTree(t, f.base, f.staging, f.state)
	for _, p := range hostilePaths {
		_, err := s.Stage(context.Background(), req(p))
		require.Error(t, err, "path %q was staged", p)
		assert.True(t, errors.Is(err, ErrBadPath) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrNotRegular) || errors.Is(err, ErrBadRequest),
			"path %q: unexpected error kind: %v", p, err)
		assert.NotContains(t, err.Error(), "SECRET")
	}
	assert.Equal(t, before, snapshotTree(t, f.base, f.staging, f.state), "nothing created or changed outside the staging folder")
	assertNoCopies(t, f)
	b, n := s.Usage()
	assert.Zero(t, b)
	assert.Zero(t, n)
}

// snapshotTree records every path under root except the excluded trees.
func snapshotTree(t testing.TB, root string, exclude ...string) map[string]int64 {
	out := map[string]int64{}
	require.NoError(t, filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		for _, e := range exclude {
			if p == e {
				return filepath.SkipDir
			}
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		out[p] = info.Size()
		return nil
	}))
	return out
}

func assertNoCopies(t testing.TB, f fixture) {
	t.Helper()
	require.NoError(t, filepath.WalkDir(f.staging, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			t.Errorf("unexpected file in staging: %s", p)
		}
		return err
	}))
	assert.Empty(t, metadata(t, f), "no metadata left")
}

// metadata lists the state directory but for the boot record (boot.go).
func metadata(t testing.TB, f fixture) []string {
	t.Helper()
	entries, err := os.ReadDir(f.state)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		if e.Name() != bootFile {
			names = append(names, e.Name())
		}
	}
	return names
}

func FuzzStagePath(f *testing.F) {
	for _, p := range hostilePaths {
		f.Add(p)
	}
	f.Add("a.csv")
	f.Add("dir/b.txt")
	f.Add("inside-link")
	fx := newFixture(f)
	s := newStager(f, fx)
	allowed := map[string]bool{sum(aContent): true, sum(bContent): true}
	f.Fuzz(func(t *testing.T, p string) {
		m, err := s.Stage(context.Background(), req(p))
		if err != nil {
			return
		}
		// Whatever was staged is one of the snapshot's own files, byte for byte.
		data, rerr := os.ReadFile(m.Target)
		require.NoError(t, rerr)
		if !allowed[sum(string(data))] || !allowed[m.SHA256] {
			t.Fatalf("path %q staged bytes from outside the snapshot: %q", p, data)
		}
		if !strings.HasPrefix(m.Target, fx.staging+"/") {
			t.Fatalf("copy outside the staging folder: %s", m.Target)
		}
		_, err = s.Delete(m.Name, m.CallerDir)
		require.NoError(t, err)
	})
}

func TestConcurrentStages(t *testing.T) {
	f := newFixture(t)
	s := newStager(t, f)
	const n = 1000
	var wg sync.WaitGroup
	metas := make([]*Meta, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := req("a.csv")
			if i%2 == 1 {
				r = req("dir/b.txt")
			}
			r.CallerDir = "user=u" + string(rune('a'+i%5))
			metas[i], errs[i] = s.Stage(context.Background(), r)
		}()
	}
	wg.Wait()
	names := map[string]bool{}
	for i := range n {
		require.NoError(t, errs[i])
		m := metas[i]
		require.False(t, names[m.Name], "duplicate name %s", m.Name)
		names[m.Name] = true
		data, err := os.ReadFile(m.Target)
		require.NoError(t, err)
		want := aContent
		if i%2 == 1 {
			want = bContent
		}
		require.Equal(t, want, string(data))
	}
	files := 0
	require.NoError(t, filepath.WalkDir(f.staging, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files++
			assert.True(t, names[d.Name()], "unknown file %s", p)
		}
		return err
	}))
	assert.Equal(t, n, files, "no lost or extra copies")
	assert.Len(t, metadata(t, f), n)
	b, count := s.Usage()
	assert.Equal(t, n, count)
	assert.EqualValues(t, n/2*(len(aContent)+len(bContent)), b)

	for _, m := range metas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Delete(m.Name, m.CallerDir)
			assert.NoError(t, err)
		}()
	}
	wg.Wait()
	assertNoCopies(t, f)
	b, count = s.Usage()
	assert.Zero(t, b)
	assert.Zero(t, count)
}

func TestQuotaAndTTL(t *testing.T) {
	f := newFixture(t)
	s := newStager(t, f, func(c *Config) { c.QuotaBytes = int64(len(aContent)) + 5 })
	m, err := s.Stage(context.Background(), req("a.csv"))
	require.NoError(t, err)
	_, err = s.Stage(context.Background(), req("a.csv"))
	require.ErrorIs(t, err, ErrQuota)
	assert.Contains(t, err.Error(), "quota")
	_, err = s.Delete(m.Name, m.CallerDir)
	require.NoError(t, err)
	_, err = s.Stage(context.Background(), req("a.csv"))
	require.NoError(t, err, "quota freed by the delete")

	for in, want := range map[time.Duration]time.Duration{0: 300 * time.Second, time.Second: time.Second, 48 * time.Hour: time.Hour} {
		got, err := s.TTL(in)
		require.NoError(t, err)
		assert.Equal(t, want, got, "ttl %s", in)
	}
	_, err = s.TTL(-time.Second)
	assert.ErrorIs(t, err, ErrBadRequest)
}

func TestDeleteChecksCaller(t *testing.T) {
	f := newFixture(t)
	s := newStager(t, f)
	m, err := s.Stage(context.Background(), req("a.csv"))
	require.NoError(t, err)
	_, err = s.Delete(m.Name, "user=mallory")
	assert.ErrorIs(t, err, ErrNotFound, "another caller's copy does not exist for mallory")
	for _, bad := range []string{"../state/x.json", "x", m.Name + "/..", strings.ToUpper(m.Name)} {
		_, err = s.Delete(bad, m.CallerDir)
		assert.Error(t, err, bad)
	}
	_, err = os.Stat(m.Target)
	require.NoError(t, err, "still there")
	_, err = s.Delete(m.Name, m.CallerDir)
	require.NoError(t, err)
	_, err = os.Stat(m.Target)
	assert.ErrorIs(t, err, fs.ErrNotExist)
	_, err = s.Delete(m.Name, m.CallerDir)
	assert.ErrorIs(t, err, ErrNotFound)
}

func TestJanitorExpiresOnTime(t *testing.T) {
	f := newFixture(t)
	s := newStager(t, f)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Run(ctx)
	long, err := s.Stage(ctx, req("a.csv"))
	require.NoError(t, err)
	short := req("dir/b.txt")
	short.TTL = 300 * time.Millisecond
	m, err := s.Stage(ctx, short)
	require.NoError(t, err)
	waitGone(t, m)
	assert.False(t, time.Now().Before(m.ExpiresAt), "removed before its expiry")
	_, err = os.Stat(long.Target)
	assert.NoError(t, err, "the long-lived copy stays")
	_, n := s.Usage()
	assert.Equal(t, 1, n)
}

// waitGone polls until a copy is removed (the deadline only stops a hung test).
func waitGone(t *testing.T, m *Meta) {
	t.Helper()
	waitPathGone(t, m.Target)
}

// waitPathGone waits until path no longer exists; the deadline only stops a test that would
// otherwise hang.
func waitPathGone(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := os.Stat(path)
		if errors.Is(err, fs.ErrNotExist) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never removed", path)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRecoveryRemovesOrphans(t *testing.T) {
	f := newFixture(t)
	s := newStager(t, f)
	keep, err := s.Stage(context.Background(), req("a.csv"))
	require.NoError(t, err)
	lost, err := s.Stage(context.Background(), req("dir/b.txt"))
	require.NoError(t, err)
	require.NoError(t, os.Remove(lost.Target)) // metadata without a copy
	orphan := filepath.Join(f.staging, "prod/apps.svc-prod-app-1/user=user-ds-1/0123456789abcdef0123-orphan.csv")
	require.NoError(t, os.WriteFile(orphan, []byte("x"), 0o644)) // a copy without metadata
	require.NoError(t, os.MkdirAll(filepath.Join(f.staging, "prod/apps.svc-prod-app-1/user=gone"), 0o755))
	tmp := filepath.Join(f.staging, ".warden-tmp/0123456789abcdef0123-half.bin")
	require.NoError(t, os.WriteFile(tmp, []byte("half"), 0o644)) // an interrupted copy
	require.NoError(t, os.WriteFile(filepath.Join(f.state, "garbage.json"), []byte("{"), 0o600))
	forged := filepath.Join(f.state, "aaaaaaaaaaaaaaaaaaaa-x.json") // metadata pointing elsewhere
	require.NoError(t, os.WriteFile(forged, []byte(`{"name":"aaaaaaaaaaaaaaaaaaaa-x","target":"`+filepath.Join(f.base, "outside.txt")+`","caller_dir":"x"}`), 0o600))

	s2 := newStager(t, f)
	_, n := s2.Usage()
	assert.Equal(t, 1, n)
	for _, gone := range []string{lost.Target, orphan, tmp, filepath.Join(f.state, lost.Name+".json"), forged, filepath.Join(f.staging, "prod/apps.svc-prod-app-1/user=gone")} {
		_, err := os.Stat(gone)
		assert.ErrorIs(t, err, fs.ErrNotExist, gone)
	}
	_, err = os.Stat(keep.Target)
	assert.NoError(t, err)
	_, err = os.Stat(filepath.Join(f.base, "outside.txt"))
	assert.NoError(t, err, "forged metadata must not make the janitor delete outside the staging folder")
	_, err = os.Stat(filepath.Join(f.staging, "prod/apps.svc-prod-app-1/apps.svc-prod-app-1"))
	assert.NoError(t, err, "the owner's own folder is kept for the workspace mount")
}

func TestCancelledCopyCleansUp(t *testing.T) {
	f := newFixture(t)
	require.NoError(t, os.WriteFile(filepath.Join(f.share, snapDir, "big.bin"), make([]byte, 3<<20), 0o644))
	s := newStager(t, f)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.Stage(ctx, req("big.bin"))
	require.ErrorIs(t, err, context.Canceled)
	assertNoCopies(t, f)
	b, _ := s.Usage()
	assert.Zero(t, b, "reservation released")
}

// A full disk is a real full disk: the staging root is a 1 MiB tmpfs (which also makes the copy
// cross filesystems, so the streaming fallback is what runs).
func TestDiskFullCleansUp(t *testing.T) {
	f := newFixture(t)
	require.NoError(t, os.MkdirAll(f.staging, 0o755))
	if err := syscall.Mount("tmpfs", f.staging, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v); needs CAP_SYS_ADMIN", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(f.staging, syscall.MNT_DETACH) })
	require.NoError(t, os.WriteFile(filepath.Join(f.share, snapDir, "big.bin"), make([]byte, 3<<20), 0o644))
	s := newStager(t, f)
	_, err := s.Stage(context.Background(), req("big.bin"))
	require.ErrorIs(t, err, ErrNoSpace)
	assertNoCopies(t, f)
	b, n := s.Usage()
	assert.Zero(t, b)
	assert.Zero(t, n)
	// The disk is usable again: a small file still stages, across filesystems.
	m, err := s.Stage(context.Background(), req("a.csv"))
	require.NoError(t, err)
	assert.Equal(t, sum(aContent), m.SHA256)
}

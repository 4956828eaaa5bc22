package stage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// crashMain stages one file and SIGKILLs itself at step, as a sidecar killed there would die.
func crashMain(base, step string) {
	crashPoint = func(at string) {
		if at == step {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
	}
	cfg := fixtureAt(base).config()
	cfg.NoSync = os.Getenv("WARDEN_STAGE_NOSYNC") != ""
	s, err := New(cfg, nil, nil)
	if err != nil {
		panic(err)
	}
	_, _ = s.Stage(context.Background(), req("a.csv"))
	os.Exit(3) // the step was never reached
}

// A sidecar killed between any two steps of publishing a copy restarts to a consistent state:
// nothing half-written left, and a copy is either gone with its metadata or visible, complete,
// with metadata and tracked. The same holds without fsyncs (Config.NoSync): a kill loses
// nothing the kernel holds.
func TestKill9AtEachPublishStep(t *testing.T) {
	for _, noSync := range []bool{false, true} {
		t.Run(fmt.Sprintf("nosync=%v", noSync), func(t *testing.T) { kill9AtEachPublishStep(t, noSync) })
	}
}

func kill9AtEachPublishStep(t *testing.T, noSync bool) {
	for _, tc := range []struct {
		step    string
		visible bool
	}{
		{"copied", false},
		{"meta-written", false},
		{"synced", false},
		{"meta-renamed", false},
		{"renamed", true},
	} {
		t.Run(tc.step, func(t *testing.T) {
			f := newFixture(t)
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "WARDEN_STAGE_CRASH_AT="+f.base, "WARDEN_STAGE_CRASH_STEP="+tc.step)
			if noSync {
				cmd.Env = append(cmd.Env, "WARDEN_STAGE_NOSYNC=1")
			}
			cmd.Stderr = os.Stderr
			err := cmd.Run()
			var exit *exec.ExitError
			require.ErrorAs(t, err, &exit)
			require.Equal(t, syscall.SIGKILL, exit.Sys().(syscall.WaitStatus).Signal(), "killed at %s", tc.step)

			s := newStager(t, f)
			_, n := s.Usage()
			copies := stagedCopies(t, f)
			tmps, _ := os.ReadDir(filepath.Join(f.staging, ".warden-tmp"))
			assert.Empty(t, tmps, "temporary copies removed")
			states := metadata(t, f)
			for _, e := range states {
				assert.False(t, strings.HasPrefix(e, ".meta-"), "temporary metadata removed: %s", e)
			}
			if !tc.visible {
				assert.Empty(t, copies)
				assert.Empty(t, states, "no metadata without a copy")
				assert.Zero(t, n)
				return
			}
			require.Len(t, copies, 1)
			assert.Equal(t, 1, n, "the copy is tracked, so it will expire")
			m, err := s.readMeta(filepath.Base(copies[0]))
			require.NoError(t, err)
			b, err := os.ReadFile(copies[0])
			require.NoError(t, err)
			h := sha256.Sum256(b)
			assert.Equal(t, aContent, string(b), "complete")
			assert.Equal(t, hex.EncodeToString(h[:]), m.SHA256)
		})
	}
}

// stagedCopies lists the files in the owner's caller folders.
func stagedCopies(t *testing.T, f fixture) []string {
	t.Helper()
	var out []string
	root := filepath.Join(f.staging, "prod", "apps.svc-prod-app-1")
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, p)
		}
		return err
	})
	require.NoError(t, err)
	return out
}

// A node restart can lose what the disk had not taken of copies published without fsyncs. The
// boot id tells it: under a new one, recovery removes every copy that no longer holds what its
// metadata says (here: truncated, zeroed, metadata torn) and keeps the rest; under the same one,
// nothing is read again.
func TestNodeRestartChecksCopies(t *testing.T) {
	f := newFixture(t)
	boot := filepath.Join(t.TempDir(), "boot_id")
	require.NoError(t, os.WriteFile(boot, []byte("boot-1\n"), 0o644))
	old := bootIDPath
	bootIDPath = boot
	t.Cleanup(func() { bootIDPath = old })

	s := newStager(t, f, func(c *Config) { c.NoSync = true })
	var ms []*Meta
	for range 4 {
		m, err := s.Stage(context.Background(), req("a.csv"))
		require.NoError(t, err)
		ms = append(ms, m)
	}
	good, truncated, zeroed, torn := ms[0], ms[1], ms[2], ms[3]
	require.NoError(t, os.Truncate(truncated.Target, 3))
	require.NoError(t, os.WriteFile(zeroed.Target, make([]byte, len(aContent)), 0o644))
	require.NoError(t, os.WriteFile(s.metaPath(torn.Name), []byte(`{"name":`), 0o644))

	// A sidecar restart on the same boot: the copies are the kernel's, nothing is checked.
	s = newStager(t, f, func(c *Config) { c.NoSync = true })
	_, n := s.Usage()
	assert.Equal(t, 3, n, "only the torn metadata is refused without a restart of the node")

	require.NoError(t, os.WriteFile(boot, []byte("boot-2\n"), 0o644))
	s = newStager(t, f, func(c *Config) { c.NoSync = true })
	_, n = s.Usage()
	assert.Equal(t, 1, n)
	copies := stagedCopies(t, f)
	require.Len(t, copies, 1)
	assert.Equal(t, good.Target, copies[0])
	assert.ElementsMatch(t, []string{good.Name + ".json"}, metadata(t, f))
	b, err := os.ReadFile(filepath.Join(f.state, bootFile))
	require.NoError(t, err)
	assert.Equal(t, "boot-2\n", string(b), "the new boot is recorded")
}

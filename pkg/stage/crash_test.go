package stage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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
	s, err := New(fixtureAt(base).config(), nil, nil)
	if err != nil {
		panic(err)
	}
	_, _ = s.Stage(context.Background(), req("a.csv"))
	os.Exit(3) // the step was never reached
}

// A sidecar killed between any two steps of publishing a copy restarts to a consistent state:
// nothing half-written left, and a copy is either gone with its metadata or visible, complete,
// with metadata and tracked.
func TestKill9AtEachPublishStep(t *testing.T) {
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
			states, _ := os.ReadDir(f.state)
			for _, e := range states {
				assert.False(t, strings.HasPrefix(e.Name(), ".meta-"), "temporary metadata removed: %s", e.Name())
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

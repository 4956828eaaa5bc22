package app

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warden-dev/warden/pkg/contract"
	"github.com/warden-dev/warden/pkg/sidecarapi"
)

const localPolicy = `
owners:
  - serviceAccount: apps/svc
    environment: prod
datasets:
  - id: d1
    snapshot: prod/d1
    environments: [prod]
    readers: [serviceAccount:apps/svc, user:alice]
`

// localOptions are a sidecar in local mode (grants from a policy file) on temporary directories.
func localOptions(t *testing.T) Options {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"snap/prod/d1", "staging", "state"} {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, d), 0o755))
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "snap/prod/d1/a.csv"), []byte("x,y\n"), 0o644))
	pol := filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.WriteFile(pol, []byte(localPolicy), 0o644))
	return Options{
		Listen: "127.0.0.1:0", Owner: "apps/svc", Environment: "prod", Workload: contract.WorkloadApp,
		DataDir: contract.DataDir, SnapshotRoot: filepath.Join(dir, "snap"),
		StagingRoot: filepath.Join(dir, "staging"), StateDir: filepath.Join(dir, "state"),
		DefaultTTL: time.Minute, MaxTTL: time.Hour, PolicyFile: pol,
		AuditLog: filepath.Join(dir, "audit.log"), RequestTimeout: time.Minute,
		Log: slog.New(slog.DiscardHandler),
	}
}

// TestRunLocal assembles the whole sidecar, stages a file through its API, and stops on cancel
// with the audit line written.
func TestRunLocal(t *testing.T) {
	o := localOptions(t)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- Run(ctx, o, ready) }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("sidecar stopped: %v", err)
	}
	c := &sidecarapi.Client{BaseURL: "http://" + addr, HTTP: http.DefaultClient, Caller: "alice"}
	staged, err := c.Stage(ctx, "d1", sidecarapi.StageRequest{Path: "a.csv"})
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(staged.Path, contract.DataDir), staged.Path)

	resp, err := http.Get("http://" + addr + sidecarapi.PathReadyz)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode, string(body))

	cancel()
	require.NoError(t, <-done)
	audit, err := os.ReadFile(o.AuditLog)
	require.NoError(t, err)
	assert.Contains(t, string(audit), `"d1"`)
}

func TestRunRefuses(t *testing.T) {
	for name, mut := range map[string]func(*Options){
		"policy and broker":  func(o *Options) { o.BrokerURL = "https://broker:8443" },
		"plain-http broker":  func(o *Options) { o.PolicyFile, o.BrokerURL = "", "http://broker:8443" },
		"unwritable audit":   func(o *Options) { o.AuditLog = filepath.Join(o.StateDir, "missing", "audit.log") },
		"no grants at all":   func(o *Options) { o.PolicyFile = "" },
		"listener taken/bad": func(o *Options) { o.Listen = "256.0.0.1:1" },
	} {
		t.Run(name, func(t *testing.T) {
			o := localOptions(t)
			mut(&o)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			assert.Error(t, Run(ctx, o, nil))
		})
	}
}

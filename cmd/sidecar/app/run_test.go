package app

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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
// with the audit line written. Its metrics address is taken: the API serves all the same.
func TestRunLocal(t *testing.T) {
	o := localOptions(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()
	o.MetricsListen = taken.Addr().String()
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

// The metrics listener serves /metrics and nothing else: not the API, which trusts its caller.
func TestMetricsListener(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "warden_sidecar_test_total", Help: "t"}))
	m, err := listenMetrics("127.0.0.1:0", reg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.run(ctx) }()
	base := "http://" + m.ln.Addr().String()
	get := func(method, path string) (int, string) {
		req, err := http.NewRequest(method, base+path, nil)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get(http.MethodGet, sidecarapi.PathMetrics)
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "warden_sidecar_test_total 0")
	for _, path := range []string{sidecarapi.PathDatasets, sidecarapi.PathReadyz, "/metrics/", "/", "/metrics/../v1/datasets"} {
		code, _ := get(http.MethodGet, path)
		assert.Equal(t, http.StatusNotFound, code, path)
	}
	code, _ = get(http.MethodPost, sidecarapi.PathMetrics)
	assert.Equal(t, http.StatusMethodNotAllowed, code)
	cancel()
	require.NoError(t, <-done)

	none, err := listenMetrics("", reg, slog.New(slog.DiscardHandler))
	assert.NoError(t, err)
	assert.Nil(t, none, "off unless an address is given")
	_, err = listenMetrics("256.0.0.1:1", reg, slog.New(slog.DiscardHandler))
	assert.Error(t, err)
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

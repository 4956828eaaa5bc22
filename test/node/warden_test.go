//go:build node

package node

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	webhookapp "github.com/warden-dev/warden/cmd/webhook/app"
	"github.com/warden-dev/warden/internal/kubenode"
	"github.com/warden-dev/warden/internal/testing/testenv"
	"github.com/warden-dev/warden/pkg/admission/mutate"
)

// sidecarMetricsPort is where the suite's sidecars serve /metrics on their pod IP
// (--sidecar-metrics-port).
const sidecarMetricsPort = 9464

// webhookLog holds the webhook's and broker's JSON log lines (debug level), for tests that check
// what the broker saw.
var webhookLog lockedBuffer

// startWarden runs Warden's webhook and broker in this process, as the Deployment in
// manifests/base runs them in a cluster, but listening on the node's bridge address (the API
// server calls the webhook there; sidecars call the broker there). This is the one place that
// knows webhookapp.Options.
func startWarden(ctx context.Context, dir string) (stop func(), err error) {
	policyFile := filepath.Join(dir, "policy", "policy.yaml")
	if err := os.MkdirAll(filepath.Dir(policyFile), 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(policyFile, []byte(policyYAML), 0o644); err != nil {
		return nil, err
	}
	ca, err := os.ReadFile(filepath.Join(env.CertDir, "ca.crt"))
	if err != nil {
		return nil, err
	}
	brokerAddr, err := freeAddr(kubenode.NodeIP)
	if err != nil {
		return nil, err
	}
	cfg := mutate.DefaultConfig()
	cfg.SidecarImage = sidecarImage
	cfg.SidecarImagePullPolicy = corev1.PullNever
	cfg.SnapshotVolume = snapshotVolume()
	cfg.BrokerURL = "https://" + brokerAddr
	cfg.BrokerCA = string(ca)
	cfg.VaultAddr = vault.Addr
	cfg.SidecarMetricsPort = sidecarMetricsPort
	// NODE_IDENTITY=token runs the suite's pods with token identity (for `make bench-node`'s
	// comparison); the default is what clusters get: pod certificates.
	acceptTokens := false
	if os.Getenv("NODE_IDENTITY") == mutate.IdentityToken {
		cfg.SidecarIdentity, acceptTokens = mutate.IdentityToken, true
	}
	brokerURL = cfg.BrokerURL

	logFile, err := os.Create(filepath.Join(dir, "webhook.log"))
	if err != nil {
		return nil, err
	}
	server, err := webhookapp.New(webhookapp.Options{
		RestConfig:   env.Config,
		PolicyFile:   policyFile,
		Host:         env.Host,
		Port:         env.Port,
		CertDir:      env.CertDir,
		HealthAddr:   "127.0.0.1:0",
		BrokerAddr:   brokerAddr,
		AcceptTokens: acceptTokens,
		Namespace:    "warden-system",
		Mutate:       cfg,
		Log:          slog.New(slog.NewJSONHandler(io.MultiWriter(logFile, &webhookLog), &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		logFile.Close()
		return nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- server.Start(sctx) }()
	stop = func() {
		cancel()
		<-done
		logFile.Close()
	}
	if err := waitHTTP(ctx, "http://"+server.HealthAddr()+"/readyz"); err != nil {
		stop()
		return nil, err
	}
	wctx, wcancel := context.WithTimeout(ctx, time.Minute)
	defer wcancel()
	if err := testenv.WaitForWebhook(wctx, env.Config); err != nil {
		stop()
		return nil, err
	}
	return stop, nil
}

// brokerURL is where the suite's broker listens (on the node's bridge).
var brokerURL string

func freeAddr(host string) (string, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func waitHTTP(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s never answered 200: %v", url, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines returns the JSON log lines whose msg is msg.
func (b *lockedBuffer) lines(msg string) []map[string]any {
	b.mu.Lock()
	data := append([]byte(nil), b.buf.Bytes()...)
	b.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// Package e2e runs Warden against a real kube-apiserver and etcd (envtest): the webhook
// configuration from manifests/, certificates from certs/gen-certs.sh, real Namespaces,
// ServiceAccounts and Pods created through the API.
package e2e

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/warden-dev/warden/internal/testenv"
	"github.com/warden-dev/warden/internal/testvault"
	"github.com/warden-dev/warden/pkg/mutate"
	"github.com/warden-dev/warden/pkg/webhook"
)

var (
	env        *testenv.Env
	kube       *kubernetes.Clientset
	server     *webhook.Server
	policyFile string
	healthURL  string
	brokerURL  string
	vaultSrv   *testvault.Server
)

const initialPolicy = `owners:
  - serviceAccount: apps/svc-prod-app-1
    environment: prod
    user: integration-test
  - serviceAccount: ws/user-ds-1
    environment: dev
    user: user-ds-1
datasets:
  - id: prod-dataset-1
    snapshot: prod/dataset-1/rw
    environments: [prod]
    readers: [serviceAccount:apps/svc-prod-app-1, user:user-ds-1]
`

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "warden-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	env, err = testenv.Start(filepath.Join(tmp, "certs"))
	if err != nil {
		// Not a skip: `make test` builds the binaries, and a suite that silently skips proves nothing.
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer env.Stop()
	kube = kubernetes.NewForConfigOrDie(env.Config)

	policyDir := filepath.Join(tmp, "policy")
	_ = os.Mkdir(policyDir, 0o755)
	policyFile = filepath.Join(policyDir, "policy.yaml")
	if err := os.WriteFile(policyFile, []byte(initialPolicy), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cfg := mutate.DefaultConfig()
	cfg.SidecarImage = "ghcr.io/warden-dev/warden-sidecar:e2e"
	logOut := io.Discard
	if os.Getenv("E2E_VERBOSE") != "" {
		logOut = os.Stderr
	}
	server, err = webhook.New(webhook.Options{
		RestConfig: env.Config,
		PolicyFile: policyFile,
		Host:       env.Host,
		Port:       env.Port,
		CertDir:    env.CertDir,
		HealthAddr: "127.0.0.1:0",
		BrokerAddr: "127.0.0.1:0",
		Namespace:  "warden-system",
		Mutate:     cfg,
		Log:        slog.New(slog.NewJSONHandler(logOut, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: webhook:", err)
		return 1
	}
	healthURL = "http://" + server.HealthAddr()
	brokerURL = "https://" + server.BrokerAddr()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- server.Start(ctx) }()
	defer func() { cancel(); <-done }()
	if err = waitReady(ctx); err == nil {
		wctx, c := context.WithTimeout(ctx, time.Minute)
		err = testenv.WaitForWebhook(wctx, env.Config)
		c()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	vaultSrv, err = testvault.Start(tmp)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer vaultSrv.Stop()
	if err := configureVault(ctx, tmp); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: configuring vault:", err)
		return 1
	}
	return m.Run()
}

func waitReady(ctx context.Context) error {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		resp, err := http.Get(healthURL + "/readyz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
			_ = body
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("webhook never became ready")
}

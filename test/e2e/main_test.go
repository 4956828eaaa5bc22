// Package e2e runs Warden against a real kube-apiserver and etcd (envtest) and a real Vault dev
// server: the webhook configuration from manifests/, certificates from certs/gen-certs.sh, real
// Namespaces, ServiceAccounts, Pods and tokens created through the API. GCP IAM, which has no
// emulator, is the in-process fake of internal/fakeiam; storage credentials run against
// internal/testing/testgcp (fake IAM Credentials and STS, fake-gcs-server, pstest).
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

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	webhookapp "github.com/warden-dev/warden/cmd/webhook/app"
	"github.com/warden-dev/warden/internal/testing/fakeiam"
	"github.com/warden-dev/warden/internal/testing/testenv"
	"github.com/warden-dev/warden/internal/testing/testgcp"
	"github.com/warden-dev/warden/internal/testing/testvault"
	"github.com/warden-dev/warden/pkg/admission/mutate"
	"github.com/warden-dev/warden/pkg/identity"
)

var (
	env        *testenv.Env
	kube       *kubernetes.Clientset
	server     *webhookapp.Server
	policyFile string
	healthURL  string
	brokerURL  string
	vaultSrv   *testvault.Server
	fakeIAM    *fakeiam.Server
	// gcp is IAM Credentials, STS, Cloud Storage and Pub/Sub for storage credentials.
	gcp *testgcp.Env
	// webhookCfg is the webhook's client: impersonating its service account, with the RBAC of
	// manifests/base/rbac.yaml.
	webhookCfg *rest.Config
	// webhookLog is the webhook's log (stderr with E2E_VERBOSE): controller-runtime's logger is
	// global, so a second webhook a test builds logs there too.
	webhookLog *slog.Logger
)

// Org service accounts that exist in the fake IAM (and IAM Credentials); aes4 belongs to the
// org the storage tests create as an object.
var orgGSAs = []string{"aes1-svc@my-project.iam.gserviceaccount.com", "aes2-svc@my-project.iam.gserviceaccount.com",
	"aes3-svc@my-project.iam.gserviceaccount.com", "aes4-svc@my-project.iam.gserviceaccount.com"}

// identityPropagation is short, so tests see a binding turn from pending to bound.
const identityPropagation = 2 * time.Second

const initialPolicy = `owners:
  - serviceAccount: apps/svc-prod-app-1
    environment: prod
    user: integration-test
  - serviceAccount: ws/user-ds-1
    environment: dev
    user: user-ds-1
  - serviceAccount: apps/svc-ephemeral
    environment: prod
datasets:
  - id: prod-dataset-1
    snapshot: prod/dataset-1/rw
    environments: [prod]
    readers: [serviceAccount:apps/svc-prod-app-1, user:user-ds-1]
orgs:
  - name: org1
    gcpServiceAccount: aes1-svc@my-project.iam.gserviceaccount.com
    members: [serviceAccount:apps/svc-prod-app-1, serviceAccount:apps/svc-ephemeral, user:user-ds-1]
    storage:
      access: [serviceAccount:apps/svc-prod-app-1, user:user-ds-1, user:user-ds-2]
      topic: org1-commits
      spaces:
        - {name: loadingzone, bucket: org1-landing, prefix: incoming/, loadingZone: true, suppliers: [serviceAccount:apps/svc-prod-app-1, user:user-ds-1]}
        - {name: curated, bucket: org1-data, prefix: curated/, users: [serviceAccount:apps/svc-prod-app-1, user:user-ds-2]}
        - {name: scratch, bucket: org1-scratch, users: [serviceAccount:apps/svc-prod-app-1]}
        - {name: archive, bucket: org1-data, prefix: archive/, users: [user:user-ds-2], trustees: [serviceAccount:apps/svc-prod-app-1, user:user-ds-1]}
  - name: org2
    gcpServiceAccount: aes2-svc@my-project.iam.gserviceaccount.com
    members: [serviceAccount:apps/svc-prod-app-1, group:org2-analysts]
  - name: org3
    gcpServiceAccount: aes3-svc@my-project.iam.gserviceaccount.com
    members: []
groups:
  org2-analysts: [user-ds-3]
gcp:
  project: my-project
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
	// What injected sidecars are told (no kubelet runs them here): host names, so the red team
	// can try to redirect them.
	cfg.BrokerURL = "https://warden-webhook.warden-system.svc:8443"
	cfg.VaultAddr = "https://vault.vault.svc:8200"
	logOut := io.Discard
	if os.Getenv("E2E_VERBOSE") != "" {
		logOut = os.Stderr
	}
	webhookLog = slog.New(slog.NewJSONHandler(logOut, &slog.HandlerOptions{Level: slog.LevelDebug}))
	// The webhook's own namespace: leader election and identity records live there.
	if _, err := kube.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "warden-system"}}, metav1.CreateOptions{}); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	// The webhook runs with exactly the RBAC of manifests/base/rbac.yaml: it impersonates the
	// service account the manifests bind, so a missing permission fails the suite.
	if err := applyManifestRBAC(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: applying manifests/base/rbac.yaml:", err)
		return 1
	}
	webhookCfg = rest.CopyConfig(env.Config)
	webhookCfg.Impersonate = rest.ImpersonationConfig{
		UserName: "system:serviceaccount:warden-system:warden-webhook",
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:warden-system", "system:authenticated"},
	}
	fakeIAM, err = fakeiam.Start(orgGSAs...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: fake IAM:", err)
		return 1
	}
	defer fakeIAM.Stop()
	iamClient, err := identity.NewIAMClient(context.Background(), fakeIAM.Addr, true)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: IAM client:", err)
		return 1
	}
	defer iamClient.Close()
	gcp, err = testgcp.Start(context.Background(), orgGSAs...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: GCP services:", err)
		return 1
	}
	defer gcp.Close()
	// Vault before the webhook: the broker logs in to it for owners' secrets from outside pods.
	vaultSrv, err = testvault.Start(tmp)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer vaultSrv.Stop()
	if err := configureVault(context.Background(), tmp); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: configuring vault:", err)
		return 1
	}
	brokerVault, err := brokerVaultLogin(context.Background(), tmp)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: the broker's vault token:", err)
		return 1
	}
	server, err = webhookapp.New(webhookapp.Options{
		RestConfig:      webhookCfg,
		OwnerSecrets:    brokerVault,
		Storage:         storageOptions(gcp),
		GCP:             &webhookapp.GCPOptions{IAM: iamClient, Propagation: identityPropagation, Resync: 2 * time.Second},
		AdminGroup:      "system:serviceaccounts:warden-admins",
		PolicyConfigMap: "warden-policy",
		PolicyFile:      policyFile,
		Host:            env.Host,
		Port:            env.Port,
		CertDir:         env.CertDir,
		HealthAddr:      "127.0.0.1:0",
		BrokerAddr:      "127.0.0.1:0",
		// The suite's sidecars run without a kubelet to request their pod certificates: they
		// present projected tokens, as sidecars injected in token identity do while a cluster
		// moves to certificates (--broker-accept-tokens). The signer runs all the same; the
		// tenant tests (tenant_test.go) prove the strict broker, the node suite the kubelet.
		AcceptTokens: true,
		Namespace:    "warden-system",
		Mutate:       cfg,
		Log:          webhookLog,
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
	defer stopStrict()
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

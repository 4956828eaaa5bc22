package chart

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	webhookapp "github.com/warden-dev/warden/cmd/webhook/app"
	"github.com/warden-dev/warden/internal/testing/fakeiam"
	"github.com/warden-dev/warden/internal/testing/testenv"
	"github.com/warden-dev/warden/internal/testing/testgcp"
	"github.com/warden-dev/warden/pkg/admission/mutate"
	"github.com/warden-dev/warden/pkg/brokerapi"
	"github.com/warden-dev/warden/pkg/cloudstorage"
	"github.com/warden-dev/warden/pkg/contract"
	"github.com/warden-dev/warden/pkg/grants"
	"github.com/warden-dev/warden/pkg/identity"
)

// The control plane (envtest: a real kube-apiserver and etcd, built by `make envtest`) is started
// once, by the first test that needs it, and stopped after all tests.
var (
	envOnce sync.Once
	envErr  error
	liveEnv *testenv.Env
	envStop []func()
)

func TestMain(m *testing.M) {
	code := m.Run()
	for i := len(envStop) - 1; i >= 0; i-- {
		envStop[i]()
	}
	os.Exit(code)
}

// controlPlane starts envtest with Warden's CRDs and webhook configurations (pointed at a port
// where startWebhook serves). Not a skip when the binaries are missing: `make chart-test` builds
// them, and a check that silently skips proves nothing.
func controlPlane(t *testing.T) *testenv.Env {
	t.Helper()
	envOnce.Do(func() {
		dir, err := os.MkdirTemp("", "warden-chart-test-")
		if err != nil {
			envErr = err
			return
		}
		envStop = append(envStop, func() { os.RemoveAll(dir) })
		liveEnv, envErr = testenv.StartWith(testenv.Options{CertDir: filepath.Join(dir, "certs")})
		if envErr == nil {
			envStop = append(envStop, func() { _ = liveEnv.Stop() })
		}
	})
	require.NoError(t, envErr, "envtest (KUBEBUILDER_ASSETS; `make chart-test` sets it)")
	return liveEnv
}

// The policy the webhook and the sidecar run with: manifests/base's, as the chart ships it.
const livePolicy = `owners:
  - serviceAccount: apps/svc-prod-app-1
    environment: prod
    user: integration-test
datasets:
  - id: prod-dataset-1
    snapshot: prod/dataset-1/rw
    environments: [prod]
    readers: [user:user-ds-1, serviceAccount:apps/svc-prod-app-1, group:analysts]
groups:
  analysts: [user-ds-2, user-ds-3]
orgs:
  - name: org1
    gcpServiceAccount: aes1-svc@my-project.iam.gserviceaccount.com
    members: [serviceAccount:apps/svc-prod-app-1]
    storage:
      access: [serviceAccount:apps/svc-prod-app-1]
      spaces:
        - {name: curated, bucket: org1-data, prefix: curated/, users: [serviceAccount:apps/svc-prod-app-1]}
        - {name: scratch, bucket: org1-scratch, users: [serviceAccount:apps/svc-prod-app-1]}
  # The broker may not impersonate org2's account (it does not exist in IAM Credentials): a
  # missing roles/iam.serviceAccountTokenCreator, as Google answers it.
  - name: org2
    gcpServiceAccount: aes2-svc@my-project.iam.gserviceaccount.com
    members: [serviceAccount:apps/svc-prod-app-1]
    storage:
      access: [serviceAccount:apps/svc-prod-app-1]
      spaces:
        - {name: data, bucket: org2-data, users: [serviceAccount:apps/svc-prod-app-1]}
gcp:
  project: my-project
`

var (
	liveOnce                 sync.Once
	liveErr                  error
	webhookMetricsURL        string
	sidecarMetricsURL        string
	webhookScrape, scScrapes map[string]*dto.MetricFamily
)

// scrapeWarden runs Warden as the e2e suite does, the webhook and broker in this process
// (webhookapp.New, with GKE identity against the in-process fake IAM, so the identity reconciler
// runs too, and with Cloud Storage credentials against the in-process Google services of
// internal/testing/testgcp, so the storage metrics exist) and a sidecar binary in local mode,
// drives one allowed and one refused admission, storage requests to the broker (minted, cached,
// signed, during an IAM Credentials outage, refused by IAM) and a few sidecar requests, and
// scrapes both /metrics endpoints.
func scrapeWarden(t *testing.T) (webhookFamilies, sidecarFamilies map[string]*dto.MetricFamily) {
	t.Helper()
	env := controlPlane(t)
	liveOnce.Do(func() { liveErr = startAndScrape(env) })
	require.NoError(t, liveErr)
	return webhookScrape, scScrapes
}

func startAndScrape(env *testenv.Env) error {
	ctx, cancel := context.WithCancel(context.Background())
	envStop = append(envStop, cancel)
	dir, err := os.MkdirTemp("", "warden-chart-live-")
	if err != nil {
		return err
	}
	envStop = append(envStop, func() { os.RemoveAll(dir) })
	policyFile := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policyFile, []byte(livePolicy), 0o644); err != nil {
		return err
	}
	kube := kubernetes.NewForConfigOrDie(env.Config)
	for _, ns := range []*corev1.Namespace{
		{ObjectMeta: metav1.ObjectMeta{Name: "warden-system"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "apps", Labels: map[string]string{"warden.dev/inject": "enabled"}}},
	} {
		if _, err := kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	if _, err := kube.CoreV1().ServiceAccounts("apps").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "svc-prod-app-1"}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}

	iam, err := fakeiam.Start("aes1-svc@my-project.iam.gserviceaccount.com")
	if err != nil {
		return err
	}
	envStop = append(envStop, iam.Stop)
	iamClient, err := identity.NewIAMClient(ctx, iam.Addr, true)
	if err != nil {
		return err
	}
	envStop = append(envStop, func() { iamClient.Close() })
	// IAM Credentials, STS, Cloud Storage and Pub/Sub, through the clients production uses (as
	// test/e2e's storageOptions). Only org1's account exists.
	gcp, err := testgcp.Start(ctx, "aes1-svc@my-project.iam.gserviceaccount.com")
	if err != nil {
		return fmt.Errorf("GCP services: %w", err)
	}
	envStop = append(envStop, gcp.Close)
	cfg := mutate.DefaultConfig()
	cfg.SidecarImage = "ghcr.io/warden-dev/warden-sidecar:chart-test"
	srv, err := webhookapp.New(webhookapp.Options{
		RestConfig: env.Config,
		GCP:        &webhookapp.GCPOptions{IAM: iamClient, Propagation: time.Second, Resync: time.Minute},
		Storage: &cloudstorage.Options{
			IAM:           gcp.IAM,
			Downscoper:    cloudstorage.STS{Endpoint: gcp.STSEndpoint()},
			Lister:        cloudstorage.GCS{Endpoint: gcp.GCSEndpoint()},
			Publisher:     cloudstorage.PubSub{Endpoint: gcp.PubSubEndpoint(), Insecure: true},
			SignedURLHost: gcp.GCSHost(), SignedURLInsecure: true,
		},
		PolicyFile: policyFile,
		Host:       env.Host,
		Port:       env.Port,
		CertDir:    env.CertDir,
		HealthAddr: "127.0.0.1:0",
		BrokerAddr: "127.0.0.1:0",
		// The storage probes present a projected token (no kubelet here for pod certificates).
		AcceptTokens: true,
		Namespace:    "warden-system",
		Mutate:       cfg,
		Log:          slog.New(slog.NewJSONHandler(io.Discard, nil)),
	})
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Start(ctx) }()
	envStop = append(envStop, func() { cancel(); <-done })
	health := "http://" + srv.HealthAddr()
	if err := waitOK(ctx, health+"/readyz"); err != nil {
		return err
	}
	wctx, wcancel := context.WithTimeout(ctx, time.Minute)
	defer wcancel()
	// Refused admissions (a service account that is no owner), until the API server calls the
	// webhook ...
	if err := testenv.WaitForWebhook(wctx, env.Config); err != nil {
		return err
	}
	// ... and one injected pod.
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "app"},
		Spec: corev1.PodSpec{
			ServiceAccountName:           "svc-prod-app-1",
			AutomountServiceAccountToken: ptr.To(false),
			Containers:                   []corev1.Container{{Name: "app", Image: "app"}},
		},
	}
	if _, err := kube.CoreV1().Pods("apps").Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		return fmt.Errorf("an owner's pod: %w", err)
	}

	if err := driveStorage(ctx, env, kube, gcp, "https://"+srv.BrokerAddr(), dir); err != nil {
		return fmt.Errorf("storage requests: %w", err)
	}

	// The sidecar, in local mode, with the same policy.
	bin := filepath.Join(dir, "warden-sidecar")
	build := exec.Command("go", "build", "-o", bin, "./cmd/sidecar")
	build.Dir = repoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/sidecar: %v\n%s", err, out)
	}
	snap := filepath.Join(dir, "snapshots", "prod", "dataset-1", "rw")
	if err := os.MkdirAll(snap, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(snap, "sales.csv"), []byte("region,total\nnorth,1\n"), 0o644); err != nil {
		return err
	}
	for _, d := range []string{"staging", "state"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			return err
		}
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	sc := exec.CommandContext(ctx, bin,
		"--listen", fmt.Sprintf("127.0.0.1:%d", port),
		"--owner", "apps/svc-prod-app-1", "--environment", "prod",
		"--policy", policyFile,
		"--snapshot-root", filepath.Join(dir, "snapshots"),
		"--staging-root", filepath.Join(dir, "staging"),
		"--state-dir", filepath.Join(dir, "state"),
		"--audit-log", filepath.Join(dir, "audit.log"))
	sc.Stderr = io.Discard
	if err := sc.Start(); err != nil {
		return err
	}
	envStop = append(envStop, func() { _ = sc.Process.Kill(); _ = sc.Wait() })
	sidecar := fmt.Sprintf("http://127.0.0.1:%d", port)
	if err := waitOK(ctx, sidecar+"/readyz"); err != nil {
		return fmt.Errorf("sidecar: %w", err)
	}
	// A listing, a stage, a refused caller and the secrets endpoint without Vault.
	for _, r := range []struct{ method, path, caller, body string }{
		{"GET", "/v1/datasets", "user-ds-1", ""},
		{"POST", "/v1/datasets/prod-dataset-1/stage", "user-ds-1", `{"path":"sales.csv"}`},
		{"GET", "/v1/datasets/prod-dataset-1/access", "mallory", ""},
		{"GET", "/v1/secrets", "user-ds-1", ""},
		{"GET", "/v1/identity/orgs", "user-ds-1", ""},
		{"POST", "/v1/identity/gcp", "user-ds-1", `{"org":"org1"}`},
	} {
		req, _ := http.NewRequestWithContext(ctx, r.method, sidecar+r.path, strings.NewReader(r.body))
		req.Header.Set("X-Warden-Caller", r.caller)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}

	webhookMetricsURL, sidecarMetricsURL = health+"/metrics", sidecar+"/metrics"
	// The identity reconciler and the status writers run on the leader: wait until this replica
	// leads, so their metrics are there.
	deadline := time.Now().Add(time.Minute)
	for {
		if webhookScrape, err = scrape(webhookMetricsURL); err != nil {
			return err
		}
		if f := webhookScrape["leader_election_master_status"]; f != nil && len(f.Metric) > 0 && f.Metric[0].GetGauge().GetValue() == 1 {
			if _, ok := webhookScrape["controller_runtime_reconcile_errors_total"]; ok {
				break
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the webhook never became leader")
		}
		time.Sleep(200 * time.Millisecond)
	}
	scScrapes, err = scrape(sidecarMetricsURL)
	return err
}

// driveStorage asks the broker for storage credentials and signed URLs as an injected pod does
// (a real pod in an opted-in namespace, its bound token), so that each result the storage alerts
// read is counted: minted, cached and ok; unavailable during an IAM Credentials outage; denied
// where IAM refuses to impersonate the org's account.
func driveStorage(ctx context.Context, env *testenv.Env, kube *kubernetes.Clientset, gcp *testgcp.Env, brokerURL, dir string) error {
	pod, err := kube.CoreV1().Pods("apps").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "storage-client"},
		Spec: corev1.PodSpec{
			ServiceAccountName:           "svc-prod-app-1",
			AutomountServiceAccountToken: ptr.To(false),
			Containers:                   []corev1.Container{{Name: "app", Image: "app"}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("an owner's pod: %w", err)
	}
	tr, err := kube.CoreV1().ServiceAccounts("apps").CreateToken(ctx, "svc-prod-app-1", &authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{
		Audiences:         []string{contract.TokenAudience},
		ExpirationSeconds: ptr.To[int64](600),
		BoundObjectRef:    &authnv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
	}}, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	tokenFile := filepath.Join(dir, "pod-token")
	if err := os.WriteFile(tokenFile, []byte(tr.Status.Token), 0o600); err != nil {
		return err
	}
	ca, err := os.ReadFile(filepath.Join(env.CertDir, "ca.crt"))
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return fmt.Errorf("no CA in %s", env.CertDir)
	}
	c := &brokerapi.Client{BaseURL: brokerURL, TokenFile: tokenFile,
		HTTP: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}}
	owner := grants.Caller{ServiceAccount: "apps/svc-prod-app-1"}
	credentials := func(org, space string) error {
		_, err := c.StorageCredentials(ctx, brokerapi.CredentialsRequest{Org: org, Space: space, Access: "read", Caller: owner})
		return err
	}
	signed := func(org, space string) error {
		_, err := c.StorageSignedURL(ctx, brokerapi.SignedURLRequest{Org: org, Space: space, Object: "report.csv", Method: http.MethodGet, Caller: owner})
		return err
	}
	for _, step := range []struct {
		what string
		call func() error
	}{
		{"minted", func() error { return credentials("org1", "curated") }},
		{"cached", func() error { return credentials("org1", "curated") }},
		{"a signed URL", func() error { return signed("org1", "curated") }},
	} {
		if err := step.call(); err != nil {
			return fmt.Errorf("%s: %w", step.what, err)
		}
	}
	// Refused by Google or Google unreachable: the broker answers an error, which the counters
	// record. Nothing is cached for scratch, so the outage is really asked.
	gcp.Creds.SetDown(true)
	errs := []error{credentials("org1", "scratch"), signed("org1", "scratch")}
	gcp.Creds.SetDown(false)
	errs = append(errs, credentials("org2", "data"), signed("org2", "data"))
	for i, err := range errs {
		if err == nil {
			return fmt.Errorf("request %d of the outage and the refusals succeeded", i)
		}
	}
	return nil
}

func waitOK(ctx context.Context, url string) error {
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s never answered 200 (%v)", url, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// scrape reads a /metrics endpoint in Prometheus's text format.
func scrape(url string) (map[string]*dto.MetricFamily, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(resp.Body)
}

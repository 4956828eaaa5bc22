package e2e

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"

	webhookapp "github.com/warden-dev/warden/cmd/webhook/app"
	"github.com/warden-dev/warden/internal/testing/testenv"
	"github.com/warden-dev/warden/pkg/admission/mutate"
	"github.com/warden-dev/warden/pkg/contract"
)

// startReplica runs another webhook process (another version: its own sidecar image) against
// the suite's API server, with the status keys of keySecret in warden-system, and installs
// Warden's admission configurations for it under name, for pods labelled label=yes.
func startReplica(t testing.TB, rc *rest.Config, name, image, keySecret, label string, mut ...func(*webhookapp.Options)) *webhookapp.Server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cfg := mutate.DefaultConfig()
	cfg.SidecarImage = image
	opts := webhookapp.Options{
		RestConfig: rc, PolicyFile: policyFile, Host: "127.0.0.1", Port: port, CertDir: env.CertDir,
		Namespace: "warden-system", StatusKeySecret: keySecret, Mutate: cfg,
		Log: slog.New(slog.NewJSONHandler(io.Discard, nil)),
	}
	for _, m := range mut {
		m(&opts)
	}
	srv, err := webhookapp.New(opts)
	require.NoError(t, err)
	c, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Start(c) }()
	t.Cleanup(func() { cancel(); <-done })
	require.Eventually(t, func() bool { return srv.PolicyView() != nil }, time.Minute, 50*time.Millisecond, "policy never in force")

	configs, err := testenv.LoadAdmissionConfigurations(testenv.RepoRoot() + "/manifests/base")
	require.NoError(t, err)
	url := fmt.Sprintf("https://127.0.0.1:%d", port)
	ca := caPEM(t)
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{label: "yes"}}
	for _, m := range configs.Mutating {
		m.Name = name
		for i := range m.Webhooks {
			w := &m.Webhooks[i]
			w.Name, w.ObjectSelector = name+"."+w.Name, sel
			u := url + *w.ClientConfig.Service.Path
			w.ClientConfig.URL, w.ClientConfig.Service, w.ClientConfig.CABundle = &u, nil, ca
		}
		_, err := kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx(t), m, metav1.CreateOptions{})
		require.NoError(t, err)
		t.Cleanup(func() {
			_ = kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(context.Background(), name, metav1.DeleteOptions{})
		})
	}
	for _, v := range configs.Validating {
		v.Name = name
		for i := range v.Webhooks {
			w := &v.Webhooks[i]
			w.Name, w.ObjectSelector = name+"."+w.Name, sel
			u := url + *w.ClientConfig.Service.Path
			w.ClientConfig.URL, w.ClientConfig.Service, w.ClientConfig.CABundle = &u, nil, ca
		}
		_, err := kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx(t), v, metav1.CreateOptions{})
		require.NoError(t, err)
		t.Cleanup(func() {
			_ = kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(context.Background(), name, metav1.DeleteOptions{})
		})
	}
	return srv
}

// waitForReplica creates (dry run) a labelled pod until the replica's sidecar image shows up.
func waitForReplica(t *testing.T, label, image string) {
	t.Helper()
	p := newPod("probe", "svc-prod-app-1")
	p.Labels = map[string]string{label: "yes"}
	require.Eventually(t, func() bool {
		got, err := createPod(t, "apps", p, true)
		return err == nil && got.Spec.InitContainers[0].Image == image
	}, time.Minute, 200*time.Millisecond, "replica %s never injected", image)
}

// A rolling upgrade: two webhook versions with different sidecar images, sharing the status key
// Secret. Each accepts the other's injections, on re-invocation, on copies and on updates, and
// never rewrites them to its own version.
func TestVersionSkew(t *testing.T) {
	setup(t)
	// "a-warden-next" sorts before "warden": the new version runs first and injects, the old
	// one is re-invoked and validates after it.
	startReplica(t, webhookCfg, "a-warden-next", "ghcr.io/warden-dev/warden-sidecar:next", "", "e2e-skew")
	waitForReplica(t, "e2e-skew", "ghcr.io/warden-dev/warden-sidecar:next")

	p := newPod("skew", "svc-prod-app-1")
	p.Labels = map[string]string{"e2e-skew": "yes"}
	created, err := createPod(t, "apps", p, false)
	require.NoError(t, err, "the old version refuses the new version's injection")
	defer kube.CoreV1().Pods("apps").Delete(context.Background(), created.Name, metav1.DeleteOptions{})
	assert.Equal(t, 1, sidecarsOf(created))
	assert.Equal(t, "ghcr.io/warden-dev/warden-sidecar:next", created.Spec.InitContainers[0].Image, "nobody re-injected it")

	// Both versions judge updates and copies of the other's pods.
	_, err = kube.CoreV1().Pods("apps").Patch(ctx(t), created.Name, types.MergePatchType, []byte(`{"metadata":{"labels":{"rolled":"yes"}}}`), metav1.PatchOptions{})
	assert.NoError(t, err)
	_, err = createPod(t, "apps", copyOf(created, "skew-copy"), true)
	assert.NoError(t, err)
	old := injected(t, "skew-old") // injected by the suite's webhook alone (no label)
	old.Labels = map[string]string{"e2e-skew": "yes"}
	_, err = kube.CoreV1().Pods("apps").Update(ctx(t), old, metav1.UpdateOptions{})
	assert.NoError(t, err, "the new version refuses an update of the old version's pod")
	// Still, neither lets the sidecar change.
	fresh, err := kube.CoreV1().Pods("apps").Get(ctx(t), created.Name, metav1.GetOptions{})
	require.NoError(t, err)
	fresh.Spec.InitContainers[0].Image = "ghcr.io/warden-dev/warden-sidecar:e2e"
	_, err = kube.CoreV1().Pods("apps").Update(ctx(t), fresh, metav1.UpdateOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Warden's sidecar is fixed")
}

// Another installation (another key) does not trust this one's injections: the seal is keyed.
func TestForeignKeyIsRefused(t *testing.T) {
	setup(t)
	// Another installation, with its own key Secret (and its own RBAC for it).
	startReplica(t, env.Config, "a-warden-foreign", "ghcr.io/warden-dev/warden-sidecar:foreign", "warden-status-key-foreign", "e2e-foreign")
	p := newPod("foreign", "svc-prod-app-1")
	p.Labels = map[string]string{"e2e-foreign": "yes"}
	var err error
	require.Eventually(t, func() bool {
		_, err = createPod(t, "apps", p, true)
		return err != nil
	}, time.Minute, 200*time.Millisecond, "the foreign replica never ran")
	assert.Contains(t, err.Error(), "warden: the pod carries "+contract.AnnotationStatus)
	assert.Contains(t, err.Error(), "seal")
	s, err := kube.CoreV1().Secrets("warden-system").Get(ctx(t), "warden-status-key-foreign", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Len(t, s.Data, 1, "created on first start")
}

func caPEM(t testing.TB) []byte {
	ca, err := os.ReadFile(filepath.Join(env.CertDir, "ca.crt"))
	require.NoError(t, err)
	return ca
}

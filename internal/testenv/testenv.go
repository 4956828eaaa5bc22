// Package testenv starts a real kube-apiserver and etcd (controller-runtime's envtest) on
// loopback, with the binaries built by `make envtest`, and registers Warden's webhook
// configuration from manifests/ against a local webhook server. The e2e tests and `make demo`
// share it, so the demo runs exactly what the tests check.
package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	admissionregv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"
)

// Env is a running control plane with Warden's webhook configuration installed.
type Env struct {
	*envtest.Environment
	Config *rest.Config
	// CertDir holds the webhook's serving certificate (tls.crt, tls.key) made by certs/gen-certs.sh.
	CertDir string
	// Host and Port are where the API server expects the webhook.
	Host string
	Port int
}

// RepoRoot finds the repository root from this source file, so tests in any package and the
// demo binary (run from the root) find manifests/ and certs/.
func RepoRoot() string {
	if _, err := os.Stat("manifests/base/mutatingwebhook.yaml"); err == nil {
		wd, _ := os.Getwd()
		return wd
	}
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Assets is the directory with kube-apiserver and etcd: $KUBEBUILDER_ASSETS, else where
// `make envtest` caches them.
func Assets() (string, error) {
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	if dir == "" {
		out, err := exec.Command(filepath.Join(RepoRoot(), "hack/tools/build.sh"), "path-envtest").Output()
		if err != nil {
			return "", fmt.Errorf("locating envtest binaries: %w", err)
		}
		dir = string(trimNL(out))
	}
	for _, b := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return "", fmt.Errorf("%s not found in %s: run `make envtest` (builds it from the Go module proxy, cached in ~/.cache/warden)", b, dir)
		}
	}
	return dir, nil
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// Start starts the control plane, makes a serving certificate with certs/gen-certs.sh (valid for
// 127.0.0.1) and installs manifests/base/mutatingwebhook.yaml, unchanged but for its client
// config, which points at 127.0.0.1:Port with the script's CA.
func Start(certDir string) (*Env, error) {
	assets, err := Assets()
	if err != nil {
		return nil, err
	}
	root := RepoRoot()
	if certDir == "" {
		return nil, errors.New("testenv: certDir is required")
	}
	gen := exec.Command(filepath.Join(root, "certs/gen-certs.sh"), "--out", certDir, "--no-apply", "--san", "IP:127.0.0.1", "--san", "DNS:localhost")
	if out, err := gen.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("certs/gen-certs.sh: %v\n%s", err, out)
	}
	ca, err := os.ReadFile(filepath.Join(certDir, "ca.crt"))
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	mwc, err := LoadWebhookConfiguration(filepath.Join(root, "manifests/base/mutatingwebhook.yaml"))
	if err != nil {
		return nil, err
	}
	for i := range mwc.Webhooks {
		cc := &mwc.Webhooks[i].ClientConfig
		url := fmt.Sprintf("https://127.0.0.1:%d%s", port, *cc.Service.Path)
		cc.URL, cc.Service, cc.CABundle = &url, nil, ca
	}

	env := &envtest.Environment{
		BinaryAssetsDirectory:    assets,
		ControlPlaneStartTimeout: 2 * time.Minute,
		ControlPlaneStopTimeout:  time.Minute,
	}
	// Keep the API server on loopback: it refuses a loopback advertise address unless the
	// endpoint reconciler is off.
	env.ControlPlane.GetAPIServer().Configure().
		Set("advertise-address", "127.0.0.1").
		Set("endpoint-reconciler-type", "none")
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("starting kube-apiserver and etcd from %s: %w", assets, err)
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err == nil {
		_, err = kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(context.Background(), mwc, metav1.CreateOptions{})
	}
	if err != nil {
		_ = env.Stop()
		return nil, fmt.Errorf("installing the webhook configuration: %w", err)
	}
	return &Env{Environment: env, Config: cfg, CertDir: certDir, Host: "127.0.0.1", Port: port}, nil
}

// LoadWebhookConfiguration reads the MutatingWebhookConfiguration manifest, strictly.
func LoadWebhookConfiguration(file string) (*admissionregv1.MutatingWebhookConfiguration, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var mwc admissionregv1.MutatingWebhookConfiguration
	if err := yaml.UnmarshalStrict(data, &mwc); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return &mwc, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// WaitForWebhook blocks until the API server calls the webhook: it dry-runs a pod that only the
// webhook refuses, in an opted-in namespace of its own, until the refusal comes back. Until then
// the API server's configuration cache may not have the webhook, and pods would pass unchecked.
func WaitForWebhook(ctx context.Context, cfg *rest.Config) error {
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	const ns = "warden-readiness-probe"
	_, err = kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: ns, Labels: map[string]string{"warden.dev/inject": "enabled"},
	}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "probe"},
		Spec: corev1.PodSpec{
			ServiceAccountName:           "nobody-owns-this",
			AutomountServiceAccountToken: ptr.To(false),
			Containers:                   []corev1.Container{{Name: "c", Image: "none"}},
		},
	}
	var last error
	for {
		_, last = kube.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if last != nil && strings.Contains(last.Error(), "is not a Warden owner") {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("webhook not called by the API server: %v", last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

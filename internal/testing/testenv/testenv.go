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

	"github.com/warden-dev/warden/pkg/contract"
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
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
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

// Options of a control plane.
type Options struct {
	// CertDir receives the webhook's serving certificate (required).
	CertDir string
	// Host is the address the webhook will listen on, which the API server dials and the
	// certificate names (default 127.0.0.1). The real-node suite uses its bridge address, which
	// pods can reach too (the broker shares the webhook's certificate).
	Host string
}

// Start starts the control plane for a webhook on 127.0.0.1; see StartWith.
func Start(certDir string) (*Env, error) {
	return StartWith(Options{CertDir: certDir})
}

// StartWith starts the control plane, makes a serving certificate with certs/gen-certs.sh (valid
// for Host) and installs Warden's admission configurations from manifests/base, unchanged but
// for their client config, which points at Host:Port with the script's CA.
func StartWith(o Options) (*Env, error) {
	assets, err := Assets()
	if err != nil {
		return nil, err
	}
	root := RepoRoot()
	if o.CertDir == "" {
		return nil, errors.New("testenv: CertDir is required")
	}
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	sans := []string{"--san", "IP:127.0.0.1", "--san", "DNS:localhost"}
	if o.Host != "127.0.0.1" {
		sans = append(sans, "--san", "IP:"+o.Host)
	}
	gen := exec.Command(filepath.Join(root, "certs/gen-certs.sh"), append([]string{"--out", o.CertDir, "--no-apply"}, sans...)...)
	if out, err := gen.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("certs/gen-certs.sh: %v\n%s", err, out)
	}
	ca, err := os.ReadFile(filepath.Join(o.CertDir, "ca.crt"))
	if err != nil {
		return nil, err
	}
	port, err := freePort(o.Host)
	if err != nil {
		return nil, err
	}
	configs, err := LoadAdmissionConfigurations(filepath.Join(root, "manifests/base"))
	if err != nil {
		return nil, err
	}
	configs.pointAt(fmt.Sprintf("https://%s:%d", o.Host, port), ca)

	env := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		// Warden's CRDs, as manifests/base installs them.
		CRDDirectoryPaths:        []string{filepath.Join(root, "manifests/base/crds")},
		ErrorIfCRDPathMissing:    true,
		ControlPlaneStartTimeout: 2 * time.Minute,
		ControlPlaneStopTimeout:  time.Minute,
	}
	// Keep the API server on loopback: it refuses a loopback advertise address unless the
	// endpoint reconciler is off.
	env.ControlPlane.GetAPIServer().Configure().
		Set("advertise-address", "127.0.0.1").
		Set("endpoint-reconciler-type", "none").
		// There is no DNS for node names here: reach kubelets (logs, exec) by their IP.
		Set("kubelet-preferred-address-types", "InternalIP")
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("starting kube-apiserver and etcd from %s: %w", assets, err)
	}
	if err := configs.install(context.Background(), cfg); err != nil {
		_ = env.Stop()
		return nil, fmt.Errorf("installing the webhook configuration: %w", err)
	}
	return &Env{Environment: env, Config: cfg, CertDir: o.CertDir, Host: o.Host, Port: port}, nil
}

// AdmissionConfigurations are the webhook configurations Warden ships.
type AdmissionConfigurations struct {
	Mutating   []*admissionregv1.MutatingWebhookConfiguration
	Validating []*admissionregv1.ValidatingWebhookConfiguration
}

// LoadAdmissionConfigurations reads every Mutating- and ValidatingWebhookConfiguration in dir's
// *webhook*.yaml files, strictly.
func LoadAdmissionConfigurations(dir string) (*AdmissionConfigurations, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*webhook*.yaml"))
	if err != nil {
		return nil, err
	}
	out := &AdmissionConfigurations{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var head struct {
			Kind string `json:"kind"`
		}
		if err := yaml.Unmarshal(data, &head); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		switch head.Kind {
		case "MutatingWebhookConfiguration":
			var c admissionregv1.MutatingWebhookConfiguration
			if err := yaml.UnmarshalStrict(data, &c); err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			out.Mutating = append(out.Mutating, &c)
		case "ValidatingWebhookConfiguration":
			var c admissionregv1.ValidatingWebhookConfiguration
			if err := yaml.UnmarshalStrict(data, &c); err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			out.Validating = append(out.Validating, &c)
		}
	}
	if len(out.Mutating) == 0 {
		return nil, fmt.Errorf("no MutatingWebhookConfiguration in %s", dir)
	}
	return out, nil
}

// pointAt replaces each webhook's Service reference by base+path with the given CA.
func (a *AdmissionConfigurations) pointAt(base string, ca []byte) {
	set := func(cc *admissionregv1.WebhookClientConfig) {
		url := base + *cc.Service.Path
		cc.URL, cc.Service, cc.CABundle = &url, nil, ca
	}
	for _, c := range a.Mutating {
		for i := range c.Webhooks {
			set(&c.Webhooks[i].ClientConfig)
		}
	}
	for _, c := range a.Validating {
		for i := range c.Webhooks {
			set(&c.Webhooks[i].ClientConfig)
		}
	}
}

func (a *AdmissionConfigurations) install(ctx context.Context, cfg *rest.Config) error {
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	for _, c := range a.Mutating {
		if _, err := kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, c, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	for _, c := range a.Validating {
		if _, err := kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, c, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	return nil
}

func freePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
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
		Name: ns, Labels: map[string]string{contract.LabelInject: contract.LabelInjectEnabled},
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

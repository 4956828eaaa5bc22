//go:build node

// Package node runs Warden's pods for real: a kubelet node on this machine (internal/kubenode:
// containerd, runc, CNI bridge), the envtest API server with Warden's admission configuration
// from manifests/base, the webhook and broker listening on the node's bridge address, a Vault
// dev server, and images built here from the current source the way `make images` builds them.
// Pods are created through the API server, injected by the webhook, and run by the kubelet;
// the app container (nodeapp) acts inside the pod on the tests' behalf.
//
// Root and Debian's containerd, runc, containernetworking-plugins and iptables are required;
// `make node` (and `make test`) run it with -tags node. It owns the machine's one node, so it
// never runs beside another node suite.
package node

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/warden-dev/warden/internal/kubenode"
	"github.com/warden-dev/warden/internal/ociimage"
	"github.com/warden-dev/warden/internal/testing/testenv"
)

const (
	sidecarImage = "ghcr.io/warden-dev/warden-sidecar:node-test"
	appImage     = "localhost/warden-node/nodeapp:1"
	appUID       = 1000 // app containers run as someone other than the sidecar (65532)
)

var (
	node  *kubenode.Node
	env   *testenv.Env
	kube  *kubernetes.Clientset
	vault *vaultServer
	// snapshots is the dataset share (a hostPath the webhook gives sidecars, read-only).
	snapshots string
	// imageResults are the images built for the suite (sizes for the benchmarks).
	imageResults []*ociimage.Result
	imageBuild   time.Duration
)

// policy in the README's format. Owners: an app, a job, a secrets user and the benchmark's in
// apps (prod), a workspace in ws (dev).
const policyYAML = `owners:
  - serviceAccount: apps/svc-prod-app-1
    environment: prod
    user: integration-test
  - serviceAccount: apps/svc-job
    environment: prod
  - serviceAccount: apps/svc-secrets
    environment: prod
  - serviceAccount: apps/svc-bench
    environment: prod
  - serviceAccount: ws/user-ds-1
    environment: dev
    user: user-ds-1
datasets:
  - id: prod-dataset-1
    snapshot: prod/dataset-1/rw
    snapshots: {"2026-10-01": prod/dataset-1/snap-2026-10-01}
    environments: [prod]
    readers: [serviceAccount:apps/svc-prod-app-1, serviceAccount:apps/svc-job, serviceAccount:apps/svc-bench, user:user-ds-1]
  - id: prod-dataset-2
    snapshot: prod/dataset-2/rw
    environments: [prod]
    readers: [user:user-ds-2]
  - id: dev-dataset-1
    snapshot: dev/dataset-1/rw
    environments: [dev]
    readers: [serviceAccount:ws/user-ds-1, user:user-ds-1, user:user-ds-2]
`

// Files of the share, relative to its root.
var snapshotFiles = map[string]string{
	"prod/dataset-1/rw/sales.csv":                "region,amount\nnorth,10\nsouth,20\n",
	"prod/dataset-1/rw/costs.csv":                "region,cost\nnorth,3\n",
	"prod/dataset-1/snap-2026-10-01/sales.csv":   "region,amount\nnorth,9\n",
	"prod/dataset-2/rw/payroll.csv":              "name,salary\nalice,1\n",
	"dev/dataset-1/rw/notes.txt":                 "dev notes\n",
	"dev/dataset-1/rw/sub/deeper.txt":            "deeper\n",
	"prod/dataset-1/rw/bulk/.keep-for-benchmark": "",
}

// namespaces of the suite: apps and ws are opted in, plain is not.
var namespaces = map[string][]string{
	"apps":  {"svc-prod-app-1", "svc-job", "svc-secrets", "svc-bench"},
	"ws":    {"user-ds-1"},
	"plain": {"svc-bench"},
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) (code int) {
	flag.Parse() // for testing.Verbose
	fail := func(format string, args ...any) int {
		// Not a skip: `make test` runs this suite, and a suite that silently skips proves nothing.
		fmt.Fprintf(os.Stderr, "node suite: "+format+"\n", args...)
		return 1
	}
	logf := func(format string, args ...any) {
		if testing.Verbose() {
			fmt.Fprintf(os.Stderr, format+"\n", args...)
		}
	}
	tmp, err := os.MkdirTemp("", "warden-node-suite-")
	if err != nil {
		return fail("%v", err)
	}
	keep := os.Getenv("NODE_KEEP") != "" // leave logs and state for a post-mortem
	defer func() {
		if keep {
			fmt.Fprintf(os.Stderr, "node suite: kept %s (and the node's directory)\n", tmp)
			return
		}
		_ = os.RemoveAll(tmp)
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// The bridge first: the webhook, broker and Vault listen on its address.
	node, err = kubenode.New(kubenode.Options{Logf: logf, Keep: keep})
	if err != nil {
		return fail("%v", err)
	}
	defer node.Stop() // after a failed start; normally it has run already, below
	env, err = testenv.StartWith(testenv.Options{CertDir: filepath.Join(tmp, "certs"), Host: kubenode.NodeIP})
	if err != nil {
		return fail("%v", err)
	}
	defer env.Stop()
	kube = kubernetes.NewForConfigOrDie(env.Config)
	if err := buildImages(filepath.Join(tmp, "images")); err != nil {
		return fail("building images: %v", err)
	}
	if err := setupCluster(ctx); err != nil {
		return fail("%v", err)
	}
	if snapshots, err = writeSnapshots(filepath.Join(tmp, "snapshots")); err != nil {
		return fail("%v", err)
	}

	if vault, err = startVault(ctx, tmp); err != nil {
		return fail("vault: %v", err)
	}
	defer vault.Stop()
	stopWarden, err := startWarden(ctx, tmp)
	if err != nil {
		return fail("webhook: %v", err)
	}
	defer stopWarden()

	// envtest has no Node authorizer: the kubelet's user is in system:masters too.
	u, err := env.AddUser(envtest.User{Name: "system:node:" + kubenode.NodeName, Groups: []string{"system:nodes", "system:masters"}}, nil)
	if err != nil {
		return fail("kubelet user: %v", err)
	}
	kc, err := u.KubeConfig()
	if err != nil {
		return fail("kubelet kubeconfig: %v", err)
	}
	if err := node.Start(ctx, kc); err != nil {
		return fail("%v", err)
	}
	defer node.Stop() // first: pods go while the API server, webhook and Vault are still up
	var tarballs []string
	for _, r := range imageResults {
		tarballs = append(tarballs, r.Path)
	}
	if err := node.Import(tarballs...); err != nil {
		return fail("%v", err)
	}
	return m.Run()
}

// buildImages builds the sidecar from this checkout into an image exactly as `make images`
// does (hack/images), and the test app the same way.
func buildImages(dir string) error {
	start := time.Now()
	sidecarBin := filepath.Join(dir, "warden-sidecar")
	appBin := filepath.Join(dir, "nodeapp")
	if err := kubenode.BuildStatic("github.com/warden-dev/warden/cmd/sidecar", sidecarBin); err != nil {
		return err
	}
	if err := kubenode.BuildStatic("github.com/warden-dev/warden/test/node/nodeapp", appBin); err != nil {
		return err
	}
	imageBuild = time.Since(start)
	for _, s := range []ociimage.Spec{
		ociimage.Binary(sidecarImage, sidecarBin).WithCARoots(ociimage.CARoots),
		ociimage.Binary(appImage, appBin),
	} {
		r, err := ociimage.Write(filepath.Join(dir, ociimage.FileName(s.Ref)), s)
		if err != nil {
			return err
		}
		imageResults = append(imageResults, r)
	}
	return nil
}

// setupCluster makes what a controller-manager and an admin would: namespaces (apps and ws
// opted in) and service accounts.
func setupCluster(ctx context.Context) error {
	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "warden-system"}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	for ns, sas := range namespaces {
		labels := map[string]string{"warden.dev/inject": "enabled"}
		if ns == "plain" {
			labels = nil
		}
		if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: labels}}, metav1.CreateOptions{}); err != nil {
			return err
		}
		for _, sa := range sas {
			if _, err := kube.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeSnapshots lays out the dataset share, readable by the sidecar's user.
func writeSnapshots(root string) (string, error) {
	for rel, content := range snapshotFiles {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return "", err
		}
	}
	for i := 0; i < 100; i++ {
		p := filepath.Join(root, "prod/dataset-1/rw/bulk", fmt.Sprintf("f-%03d.csv", i))
		if err := os.WriteFile(p, []byte(strings.Repeat(fmt.Sprintf("row,%d\n", i), 1000)), 0o644); err != nil {
			return "", err
		}
	}
	// MkdirTemp made the suite's directory 0700: the sidecar (65532) must traverse it.
	for d := root; d != "/" && d != "."; d = filepath.Dir(d) {
		if d == os.TempDir() {
			break
		}
		if err := os.Chmod(d, 0o755); err != nil {
			return "", err
		}
	}
	return root, nil
}

// snapshotVolume is the snapshot share as the webhook gives it to sidecars.
func snapshotVolume() corev1.VolumeSource {
	t := corev1.HostPathDirectory
	return corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: snapshots, Type: &t}}
}

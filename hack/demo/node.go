package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/warden-dev/warden/internal/kubenode"
	"github.com/warden-dev/warden/internal/ociimage"
	"github.com/warden-dev/warden/internal/testing/testenv"
	"github.com/warden-dev/warden/pkg/contract"
)

const (
	demoSidecarImage = "ghcr.io/warden-dev/warden-sidecar:demo"
	demoAppImage     = "localhost/warden-demo/app:1"
)

// realPod runs one injected job pod on a real kubelet node on this machine: the webhook binary
// and its broker on the node's bridge address, images built from bin/ without Docker. A machine
// that cannot run a node (not root, Debian's containerd, runc or CNI plugins missing, no
// kubelet built) gets a plain message saying what was skipped and why.
func realPod(ctx context.Context, root, bin string) error {
	section("real pod: an injected job on a kubelet + containerd node on this machine")
	if err := kubenode.Requirements(); err != nil {
		fmt.Println("skipped:", err)
		return nil
	}
	kubelet, err := kubenode.KubeletBinary()
	if err != nil {
		fmt.Println("skipped:", err)
		return nil
	}
	tmp, err := os.MkdirTemp("", "warden-demo-node-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	node, err := kubenode.New(kubenode.Options{Kubelet: kubelet})
	if err != nil {
		return err
	}
	defer node.Stop() // after a failed start; normally it has run already, below
	env, err := testenv.StartWith(testenv.Options{CertDir: filepath.Join(tmp, "certs"), Host: kubenode.NodeIP})
	if err != nil {
		return err
	}
	defer env.Stop()
	kube, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		return err
	}
	images, err := demoImages(tmp, bin)
	if err != nil {
		return err
	}
	share := filepath.Join(tmp, "share")
	for name, content := range demoShare {
		p := filepath.Join(share, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
	}
	for _, ns := range []*corev1.Namespace{
		{ObjectMeta: metav1.ObjectMeta{Name: "warden-system"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "apps", Labels: map[string]string{contract.LabelInject: contract.LabelInjectEnabled}}},
	} {
		if _, err := kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	if _, err := kube.CoreV1().ServiceAccounts("apps").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "svc-prod-app-1"}}, metav1.CreateOptions{}); err != nil {
		return err
	}

	stopWebhook, err := nodeWebhook(ctx, root, bin, tmp, env, share)
	if err != nil {
		return err
	}
	defer stopWebhook()

	// envtest has no Node authorizer: the kubelet's user is in system:masters too.
	u, err := env.AddUser(envtest.User{Name: "system:node:" + kubenode.NodeName, Groups: []string{"system:nodes", "system:masters"}}, nil)
	if err != nil {
		return err
	}
	kc, err := u.KubeConfig()
	if err != nil {
		return err
	}
	if err := node.Start(ctx, kc); err != nil {
		return err
	}
	defer node.Stop() // first: the node's pods go while the API server and the webhook are up
	if err := node.Import(images...); err != nil {
		return err
	}
	fmt.Printf("node %s Ready at %s; images %s and %s imported\n", kubenode.NodeName, kubenode.NodeIP, demoSidecarImage, demoAppImage)

	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "stage-and-read", Labels: map[string]string{contract.LabelWorkload: string(contract.WorkloadJob)}},
		Spec: corev1.PodSpec{
			NodeName:                      kubenode.NodeName,
			ServiceAccountName:            "svc-prod-app-1",
			AutomountServiceAccountToken:  ptr.To(false),
			RestartPolicy:                 corev1.RestartPolicyNever,
			TerminationGracePeriodSeconds: ptr.To[int64](5),
			Containers: []corev1.Container{{
				Name: "app", Image: demoAppImage, ImagePullPolicy: corev1.PullNever,
				Args:            []string{"job", "prod-dataset-1", "sales.csv"},
				SecurityContext: &corev1.SecurityContext{RunAsUser: ptr.To[int64](1000), RunAsNonRoot: ptr.To(true)},
			}},
		},
	}
	start := time.Now()
	created, err := kube.CoreV1().Pods("apps").Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	fmt.Printf("created apps/%s: init containers %v, the app runs `nodeapp job prod-dataset-1 sales.csv`\n", created.Name, names(created.Spec.InitContainers))
	var done *corev1.Pod
	for done == nil {
		p, err := kube.CoreV1().Pods("apps").Get(ctx, created.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			done = p
			break
		}
		if time.Since(start) > 2*time.Minute {
			return fmt.Errorf("pod still %s after 2 minutes", p.Status.Phase)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	fmt.Printf("pod %s after %v\n", done.Status.Phase, time.Since(start).Round(10*time.Millisecond))
	for _, c := range []string{contract.SidecarName, "app"} {
		logs, _ := node.Logs(done, c)
		fmt.Printf("%s:\n%s", c, indent(lastLines(logs, 6)))
	}
	if done.Status.Phase != corev1.PodSucceeded {
		return errors.New("the job pod failed")
	}
	return nil
}

// demoImages writes the sidecar image from bin/warden-sidecar and the app image from nodeapp.
func demoImages(tmp, bin string) ([]string, error) {
	app := filepath.Join(tmp, "nodeapp")
	if err := kubenode.BuildStatic("github.com/warden-dev/warden/test/node/nodeapp", app); err != nil {
		return nil, err
	}
	var out []string
	for _, s := range []ociimage.Spec{
		ociimage.Binary(demoSidecarImage, filepath.Join(bin, "warden-sidecar")).WithCARoots(ociimage.CARoots),
		ociimage.Binary(demoAppImage, app),
	} {
		r, err := ociimage.Write(filepath.Join(tmp, ociimage.FileName(s.Ref)), s)
		if err != nil {
			return nil, err
		}
		out = append(out, r.Path)
	}
	return out, nil
}

// nodeWebhook runs bin/warden-webhook with its admission and broker listeners on the bridge.
func nodeWebhook(ctx context.Context, root, bin, tmp string, env *testenv.Env, share string) (func(), error) {
	kubeconfig := filepath.Join(tmp, "kubeconfig")
	if err := os.WriteFile(kubeconfig, env.KubeConfig, 0o600); err != nil {
		return nil, err
	}
	health, err := freeAddr()
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", net.JoinHostPort(kubenode.NodeIP, "0"))
	if err != nil {
		return nil, err
	}
	broker := l.Addr().String()
	l.Close()
	logFile, err := os.Create(filepath.Join(tmp, "webhook.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "warden-webhook"),
		"--kubeconfig", kubeconfig,
		"--policy", filepath.Join(root, "examples/policy.yaml"),
		"--cert-dir", env.CertDir,
		"--listen", net.JoinHostPort(env.Host, strconv.Itoa(env.Port)),
		"--health-listen", health,
		"--broker-listen", broker,
		"--broker-url", "https://"+broker,
		"--sidecar-image", demoSidecarImage, "--sidecar-image-pull-policy", "Never",
		"--snapshot-volume", `{"hostPath":{"path":"`+share+`","type":"Directory"}}`,
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		logFile.Close()
	}
	wctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	if err := waitHTTP(wctx, "http://"+health+"/readyz"); err != nil {
		stop()
		return nil, fmt.Errorf("webhook not ready: %w", err)
	}
	if err := testenv.WaitForWebhook(wctx, env.Config); err != nil {
		stop()
		return nil, err
	}
	fmt.Printf("webhook on %s:%d, broker on %s (the pod reaches it over the bridge)\n", env.Host, env.Port, broker)
	return stop, nil
}

func names(cs []corev1.Container) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n") + "\n"
}

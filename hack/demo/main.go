// Command demo runs Warden end to end on this machine: a real kube-apiserver and etcd (envtest),
// the warden-webhook binary with the example policy, and a warden-sidecar, on loopback. It
// creates namespaces, service accounts and pods that show admission, denial and the injected
// spec, stages files, reads secrets from a Vault dev server, binds a GCP identity against the
// fake IAM and hands out Cloud Storage credentials (fake IAM Credentials and STS,
// fake-gcs-server, pstest): upload, signed URL, commit. Then, when the machine can run a kubelet node (root, Debian's containerd, runc and
// CNI plugins), it runs an injected job pod for real. Run it with `make demo`.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/warden-dev/warden/internal/testing/fakeiam"
	"github.com/warden-dev/warden/internal/testing/testenv"
	"github.com/warden-dev/warden/internal/testing/testgcp"
	"github.com/warden-dev/warden/internal/testing/testvault"
	wardenv1 "github.com/warden-dev/warden/pkg/apis/warden/v1alpha1"
	"github.com/warden-dev/warden/pkg/contract"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx)
	if err == nil {
		root := testenv.RepoRoot()
		err = realPod(ctx, root, filepath.Join(root, "bin"))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		os.Exit(1)
	}
}

func section(title string) { fmt.Printf("\n=== %s\n", title) }

func run(ctx context.Context) error {
	root := testenv.RepoRoot()
	bin := filepath.Join(root, "bin")
	for _, b := range []string{"warden-webhook", "warden-sidecar"} {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			return fmt.Errorf("%s not built: run `make demo` (it runs `make build` first)", b)
		}
	}
	tmp, err := os.MkdirTemp("", "warden-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	section("control plane: kube-apiserver + etcd on 127.0.0.1 (envtest)")
	env, err := testenv.Start(filepath.Join(tmp, "certs"))
	if err != nil {
		return err
	}
	defer func() {
		section("stopping")
		_ = env.Stop()
		fmt.Println("control plane stopped")
	}()
	fmt.Println("API server:", env.Config.Host)
	kubeconfig := filepath.Join(tmp, "kubeconfig")
	if err := os.WriteFile(kubeconfig, env.KubeConfig, 0o600); err != nil {
		return err
	}

	kube, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		return err
	}
	// The webhook's namespace: its leader-election lease and identity records live there.
	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "warden-system"}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	// GCP IAM has no emulator: the broker talks to the same in-process fake the tests use.
	iam, err := fakeiam.Start("aes1-svc@my-project.iam.gserviceaccount.com")
	if err != nil {
		return err
	}
	defer iam.Stop()
	// Storage credentials: IAM Credentials and STS (fakes), Cloud Storage (fake-gcs-server) and
	// Pub/Sub (pstest), in process; the webhook binary reaches them through its endpoint flags.
	gcp, err := testgcp.Start(ctx, "aes1-svc@my-project.iam.gserviceaccount.com")
	if err != nil {
		return err
	}
	defer gcp.Close()
	for _, b := range []string{"org1-data", "org1-public"} {
		gcp.GCS.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: b})
	}
	if err := gcp.CreateTopic(ctx, "my-project", "org1-commits"); err != nil {
		return err
	}

	section("webhook: bin/warden-webhook with examples/policy.yaml")
	healthAddr, err := freeAddr()
	if err != nil {
		return err
	}
	brokerAddr, err := freeAddr()
	if err != nil {
		return err
	}
	webhookLog, err := os.Create(filepath.Join(tmp, "webhook.log"))
	if err != nil {
		return err
	}
	webhook := exec.CommandContext(ctx, filepath.Join(bin, "warden-webhook"),
		"--kubeconfig", kubeconfig,
		"--policy", filepath.Join(root, "examples/policy.yaml"),
		"--cert-dir", env.CertDir,
		"--listen", net.JoinHostPort(env.Host, strconv.Itoa(env.Port)),
		"--health-listen", healthAddr,
		"--broker-listen", brokerAddr,
		"--broker-url", "https://"+brokerAddr,
		"--sidecar-image", "ghcr.io/warden-dev/warden-sidecar:demo",
		"--gcp-identity", "--gcp-iam-endpoint", iam.Addr, "--gcp-iam-insecure", "--gcp-propagation", "2m",
		"--storage", "--gcp-credentials-endpoint", gcp.Creds.Addr, "--gcp-sts-endpoint", gcp.STSEndpoint(),
		"--gcp-storage-endpoint", gcp.GCSEndpoint(), "--gcp-pubsub-endpoint", gcp.PubSubEndpoint(), "--gcp-storage-insecure",
	)
	webhook.Stdout, webhook.Stderr = webhookLog, webhookLog
	webhook.Cancel = func() error { return webhook.Process.Signal(syscall.SIGTERM) }
	if err := webhook.Start(); err != nil {
		return err
	}
	defer func() {
		_ = webhook.Process.Signal(syscall.SIGTERM)
		_ = webhook.Wait()
		fmt.Println("webhook stopped")
	}()
	wctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	if err := waitHTTP(wctx, "http://"+healthAddr+"/readyz"); err != nil {
		return fmt.Errorf("webhook not ready: %w (see %s)", err, webhookLog.Name())
	}
	if err := testenv.WaitForWebhook(wctx, env.Config); err != nil {
		return err
	}
	body, _ := get("http://" + healthAddr + "/readyz")
	fmt.Print("readyz:\n" + indent(body))

	for ns, optIn := range map[string]bool{"apps": true, "plain": false} {
		n := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}
		if optIn {
			n.Labels = map[string]string{contract.LabelInject: contract.LabelInjectEnabled}
		}
		if _, err := kube.CoreV1().Namespaces().Create(ctx, n, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	for _, sa := range [][2]string{{"apps", "svc-prod-app-1"}, {"apps", "mallory"}, {"plain", "default"}} {
		if _, err := kube.CoreV1().ServiceAccounts(sa[0]).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa[1]}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	pod := func(name, sa string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PodSpec{
				ServiceAccountName:           sa,
				AutomountServiceAccountToken: ptr.To(false),
				Containers:                   []corev1.Container{{Name: "app", Image: "python:3.12", Command: []string{"python", "app.py"}}},
			},
		}
	}

	section("admit: pod in opted-in namespace 'apps' running as owner apps/svc-prod-app-1")
	report := pod("report", "svc-prod-app-1")
	report.Spec.NodeName = demoNode // the demo's kubelet stand-in requests its certificate below
	created, err := kube.CoreV1().Pods("apps").Create(ctx, report, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("allowed pod refused: %w", err)
	}
	fmt.Println("created pod apps/report; the stored spec now has Warden's parts:")
	if err := printInjected(created); err != nil {
		return err
	}

	section("deny: pod in 'apps' running as apps/mallory (not an owner)")
	_, err = kube.CoreV1().Pods("apps").Create(ctx, pod("sneaky", "mallory"), metav1.CreateOptions{})
	if err == nil {
		return errors.New("a pod of a non-owner was admitted")
	}
	fmt.Println("refused by the API server:\n" + indent(err.Error()))

	section("deny: owner pod that tries to mount the dataset share itself")
	raw := pod("raw-mount", "svc-prod-app-1")
	raw.Spec.Volumes = []corev1.Volume{{Name: "datasets", VolumeSource: corev1.VolumeSource{
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "warden-snapshots"}}}}
	_, err = kube.CoreV1().Pods("apps").Create(ctx, raw, metav1.CreateOptions{})
	if err == nil {
		return errors.New("a pod mounting the snapshot share was admitted")
	}
	fmt.Println("refused by the API server:\n" + indent(err.Error()))

	section("untouched: pod in namespace 'plain' (no warden.dev/inject label)")
	plain, err := kube.CoreV1().Pods("plain").Create(ctx, pod("web", "default"), metav1.CreateOptions{})
	if err != nil {
		return err
	}
	fmt.Printf("created pod plain/web with %d container(s), %d init container(s), no %s annotation: %v\n",
		len(plain.Spec.Containers), len(plain.Spec.InitContainers), contract.AnnotationStatus, plain.Annotations[contract.AnnotationStatus] == "")

	section("policy objects: a dataset owner publishes a Dataset in their namespace")
	if err := publishDataset(ctx, env); err != nil {
		return err
	}

	section("sidecar: bin/warden-sidecar for pod apps/report, grants from the broker")
	bundle, err := kubeletCertificate(ctx, env, kube, created)
	if err != nil {
		return err
	}
	tok, err := kube.CoreV1().ServiceAccounts("apps").CreateToken(ctx, "svc-prod-app-1", &authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{
		Audiences:         []string{contract.TokenAudience},
		ExpirationSeconds: ptr.To[int64](600),
		BoundObjectRef:    &authnv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: created.Name, UID: created.UID},
	}}, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	fmt.Println("the pod's projected token (audience warden) is for Vault only: the broker refuses it, as it refuses a token anyone with the edit role mints:")
	if code, msg := brokerWithToken("https://"+brokerAddr, filepath.Join(env.CertDir, "ca.crt"), tok.Status.Token); code != 401 {
		return fmt.Errorf("the broker accepted a token: %d %s", code, msg)
	} else {
		fmt.Print(indent(fmt.Sprintf("%d %s", code, msg)))
	}

	section("vault: dev server on loopback, configured with manifests/vault/configure-vault.sh")
	vaultAddr, stopVault, err := startVault(ctx, kube, env, tmp)
	if err != nil {
		return err
	}
	defer stopVault()
	return runSidecar(ctx, bin, tmp, "https://"+brokerAddr, filepath.Join(env.CertDir, "ca.crt"), bundle, tok.Status.Token, vaultAddr, gcp, func() {
		ksa, err := kube.CoreV1().ServiceAccounts("apps").Get(ctx, "svc-prod-app-1", metav1.GetOptions{})
		if err == nil {
			fmt.Printf("  service account apps/svc-prod-app-1: %s=%q\n", "iam.gke.io/gcp-service-account", ksa.Annotations["iam.gke.io/gcp-service-account"])
		}
		fmt.Printf("  IAM policy of aes1-svc (fake IAM): roles/iam.workloadIdentityUser members %v\n", iam.Members("aes1-svc@my-project.iam.gserviceaccount.com", "roles/iam.workloadIdentityUser"))
	})
}

// startVault runs a Vault dev server and configures its Kubernetes auth method against the
// demo's API server, as an admin would for a Vault outside the cluster.
func startVault(ctx context.Context, kube *kubernetes.Clientset, env *testenv.Env, tmp string) (string, func(), error) {
	v, err := testvault.Start(tmp)
	if err != nil {
		return "", nil, err
	}
	out, err := v.ConfigureKubernetesAuth(ctx, kube, env.Config, tmp, testvault.KubernetesAuth{Owners: []string{"apps/svc-prod-app-1"}})
	if err != nil {
		v.Stop()
		return "", nil, err
	}
	fmt.Print(indent(string(out)))
	return v.Addr, v.Stop, nil
}

// printInjected shows what Warden added: the status annotation, the sidecar, the volumes and the
// app container's mount and env.
func printInjected(p *corev1.Pod) error {
	fmt.Printf("  annotation %s: %s\n", contract.AnnotationStatus, p.Annotations[contract.AnnotationStatus])
	var vols []corev1.Volume
	for _, v := range p.Spec.Volumes {
		if strings.HasPrefix(v.Name, contract.ReservedNamePrefix) {
			vols = append(vols, v)
		}
	}
	app := p.Spec.Containers[0]
	view := map[string]any{
		"initContainers[0] (native sidecar)": p.Spec.InitContainers[0],
		"volumes (Warden's)":                 vols,
		"containers[0] app: volumeMounts":    app.VolumeMounts,
		"containers[0] app: env":             app.Env,
	}
	out, err := yaml.Marshal(view)
	if err != nil {
		return err
	}
	fmt.Print(indent(string(out)))
	return nil
}

// demoShare is the dataset snapshot share the sidecar copies from.
var demoShare = map[string]string{
	"prod/dataset-1/rw/sales.csv":              "region,revenue\nnorth,120\nsouth,95\n",
	"prod/dataset-1/rw/2026/q3.csv":            "month,revenue\njul,40\naug,41\nsep,39\n",
	"prod/dataset-1/snap-2026-10-01/sales.csv": "region,revenue\nnorth,110\nsouth,90\n",
	"prod/dataset-3/rw/salaries.csv":           "name,salary\nconfidential,1\n",
}

func runSidecar(ctx context.Context, bin, tmp, broker, ca string, bundle []byte, token, vaultAddr string, gcp *testgcp.Env, showIdentity func()) error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	share := filepath.Join(tmp, "share")
	for p, content := range demoShare {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(share, p)), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(share, p), []byte(content), 0o644); err != nil {
			return err
		}
	}
	for _, d := range []string{"staging", "state"} {
		if err := os.MkdirAll(filepath.Join(tmp, d), 0o755); err != nil {
			return err
		}
	}
	tokenFile := filepath.Join(tmp, "token")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		return err
	}
	certFile := filepath.Join(tmp, "credentials.pem")
	if err := os.WriteFile(certFile, bundle, 0o600); err != nil {
		return err
	}
	auditLog := filepath.Join(tmp, "audit.log")
	sc := exec.CommandContext(ctx, filepath.Join(bin, "warden-sidecar"),
		"--listen", addr, "--owner", "apps/svc-prod-app-1", "--environment", "prod", "--workload", "app",
		"--snapshot-root", share, "--staging-root", filepath.Join(tmp, "staging"), "--state-dir", filepath.Join(tmp, "state"),
		"--broker-url", broker, "--broker-ca", ca, "--cert-file", certFile, "--token-file", tokenFile, "--vault-addr", vaultAddr,
		"--audit-log", auditLog, "--pod-name", "report")
	sc.Stderr = io.Discard
	sc.Cancel = func() error { return sc.Process.Signal(syscall.SIGTERM) }
	if err := sc.Start(); err != nil {
		return err
	}
	defer func() {
		_ = sc.Process.Signal(syscall.SIGTERM)
		_ = sc.Wait()
		fmt.Println("sidecar stopped")
	}()
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := waitHTTP(sctx, "http://"+addr+"/readyz"); err != nil {
		return err
	}
	base := "http://" + addr
	call := func(method, path, caller, body string) (int, string) {
		req, _ := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(body))
		if caller != "" {
			req.Header.Set("X-Warden-Caller", caller)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	show := func(what, method, path, caller, body string) (int, string) {
		code, out := call(method, path, caller, body)
		who := "the owner itself"
		if caller != "" {
			who = "caller " + caller
		}
		fmt.Printf("\n%s (%s)\n  $ curl -X %s \"$W%s\"", what, who, method, path)
		if body != "" {
			fmt.Printf(" -d '%s'", body)
		}
		fmt.Printf("\n  -> %d %s\n", code, out)
		return code, out
	}
	fmt.Println("app code calls W=http://127.0.0.1:$WARDEN_PORT, naming the caller in X-Warden-Caller")
	show("datasets this pod may read", "GET", "/v1/datasets", "", "")
	show("datasets readable for a user", "GET", "/v1/datasets", "user-ds-1", "")
	show("allowed: owner and caller both read prod-dataset-1", "GET", "/v1/datasets/prod-dataset-1/access", "user-ds-1", "")
	show("denied: user-ds-1 is not a reader of prod-dataset-3", "GET", "/v1/datasets/prod-dataset-3/access", "user-ds-1", "")
	show("a folder of the dataset", "GET", "/v1/datasets/prod-dataset-1/files?path=2026", "user-ds-1", "")
	code, out := show("stage a file for user-ds-1", "POST", "/v1/datasets/prod-dataset-1/stage", "user-ds-1", `{"path":"sales.csv","ttl_seconds":120}`)
	if code != http.StatusCreated {
		return fmt.Errorf("staging failed: %d %s", code, out)
	}
	var staged struct{ Path, Name string }
	_ = json.Unmarshal([]byte(out), &staged)
	copyPath := filepath.Join(tmp, "staging/prod/apps.svc-prod-app-1/user=user-ds-1", staged.Name)
	data, err := os.ReadFile(copyPath)
	if err != nil {
		return err
	}
	fmt.Printf("  the app reads %s (in the staging volume: %s):\n%s", staged.Path, strings.TrimPrefix(copyPath, tmp+"/"), indent(string(data)))
	show("stage from an older snapshot", "POST", "/v1/datasets/prod-dataset-1/stage", "user-ds-1", `{"path":"sales.csv","snapshot":"2026-10-01"}`)
	show("denied: staging a dataset the caller may not read", "POST", "/v1/datasets/prod-dataset-3/stage", "user-ds-1", `{"path":"salaries.csv"}`)
	show("refused: path traversal", "POST", "/v1/datasets/prod-dataset-1/stage", "user-ds-1", `{"path":"../../dataset-3/rw/salaries.csv"}`)
	show("delete the copy before its TTL", "DELETE", "/v1/staged/"+staged.Name, "user-ds-1", "")
	show("stage from the Dataset object team-sales (its namespace's root is prod/)", "POST", "/v1/datasets/team-sales/stage", "user-ds-1", `{"path":"sales.csv"}`)

	fmt.Println("\nsecrets: the sidecar logged in to Vault with the pod's token; the app never sees a Vault token")
	show("store the owner's secrets (one KV v2 version)", "PUT", "/v1/secrets", "", `{"db-user":"report","db-password":"s3cr3t"}`)
	show("list the keys", "GET", "/v1/secrets", "", "")
	show("read one", "GET", "/v1/secrets/db-password", "", "")
	wardenCLI := func(stdin string, args ...string) {
		cmd := exec.CommandContext(ctx, filepath.Join(bin, "warden"), append([]string{"secrets"}, args...)...)
		cmd.Env = append(os.Environ(), contract.EnvPort+"="+addr[strings.LastIndex(addr, ":")+1:])
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		res := "ok"
		if err != nil {
			res = err.Error()
		}
		fmt.Printf("\n  $ warden secrets %s   (%s)\n", strings.Join(args, " "), res)
		if text := strings.TrimRight(string(out), "\n"); text != "" {
			fmt.Print(indent(text))
		}
	}
	wardenCLI("rotated-token-123\n", "--set", "api-token")
	wardenCLI("", "--list")
	wardenCLI("", "--get", "api-token")
	wardenCLI("", "--delete", "db-user")
	wardenCLI("", "--list")

	fmt.Println("\nGCP workload identity: the broker binds the pod's service account to its org's GCP service account")
	show("the orgs this owner belongs to", "GET", "/v1/identity/orgs", "", "")
	show("act as org1's GCP service account", "POST", "/v1/identity/gcp", "", `{"org":"org1"}`)
	showIdentity()
	show("refused: not a member of org2", "POST", "/v1/identity/gcp", "", `{"org":"org2"}`)
	show("reset", "DELETE", "/v1/identity/gcp", "", "")
	showIdentity()
	show("no org given: the one used last (a pre-run script's call)", "POST", "/v1/identity/gcp", "", `{}`)
	show("reset", "DELETE", "/v1/identity/gcp", "", "")

	if err := demoStorage(ctx, show, gcp); err != nil {
		return err
	}

	audit, err := os.ReadFile(auditLog)
	if err != nil {
		return err
	}
	fmt.Print("\naudit log (one JSON line per decision):\n" + indent(string(audit)))

	out2, err := exec.Command(filepath.Join(bin, "warden-sidecar"), "--listen", "0.0.0.0:9999", "--owner", "apps/x", "--environment", "prod").CombinedOutput()
	fmt.Printf("\nwarden-sidecar --listen 0.0.0.0:9999 refuses to start (%v):\n%s", err, indent(string(out2)))
	return nil
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func get(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return string(b), fmt.Errorf("%s: %s", url, resp.Status)
	}
	return string(b), err
}

func waitHTTP(ctx context.Context, url string) error {
	for {
		if _, err := get(url); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func indent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return "    " + strings.Join(lines, "\n    ") + "\n"
}

// publishDataset does what a platform admin and a dataset owner would with kubectl: the admin
// gives namespace team-data the share's prod/ subtree, the owner publishes a Dataset there.
func publishDataset(ctx context.Context, env *testenv.Env) error {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := wardenv1.AddToScheme(scheme); err != nil {
		return err
	}
	c, err := client.New(env.Config, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-data", Annotations: map[string]string{
		contract.AnnotationSnapshotRoot: "prod", contract.AnnotationDatasetIDs: "team-*"}}}
	if err := c.Create(ctx, ns); err != nil {
		return err
	}
	ds := &wardenv1.Dataset{ObjectMeta: metav1.ObjectMeta{Namespace: "team-data", Name: "team-sales"},
		Spec: wardenv1.DatasetSpec{Snapshot: "dataset-1/rw", Readers: []wardenv1.Member{"serviceAccount:apps/svc-prod-app-1", "user:user-ds-1"}}}
	if err := c.Create(ctx, ds); err != nil {
		return err
	}
	fmt.Println("namespace team-data, annotated warden.dev/snapshot-root=prod and warden.dev/dataset-ids=team-* by an admin; Dataset team-data/team-sales: snapshot dataset-1/rw, readers apps/svc-prod-app-1 and user-ds-1")
	for i := 0; i < 100; i++ {
		if err := c.Get(ctx, client.ObjectKeyFromObject(ds), ds); err == nil && len(ds.Status.Conditions) > 0 {
			cond := ds.Status.Conditions[0]
			fmt.Printf("the webhook's verdict on it: %s=%s (%s)\n", cond.Type, cond.Status, cond.Message)
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("the Dataset got no status")
}

//go:build node

package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/warden-dev/warden/internal/kubenode"
	"github.com/warden-dev/warden/pkg/contract"
)

// (1) An app pod: the native sidecar starts and is ready before the app; the app lists datasets,
// stages a file through the sidecar and reads it at the path the answer gave, through its
// read-only subPath mount; it cannot write there; the share, the state and the token are not in
// its container.
func TestAppPod(t *testing.T) {
	p := running(t, create(t, appPod("apps", "app", "svc-prod-app-1", "serve")))

	if ic := p.Spec.InitContainers; len(ic) == 0 || ic[0].Name != contract.SidecarName || ic[0].RestartPolicy == nil || *ic[0].RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Fatalf("the sidecar is not the first init container with restartPolicy Always: %+v", ic)
	}
	sc := status(p, contract.SidecarName)
	if sc == nil || sc.Started == nil || !*sc.Started || !sc.Ready || sc.State.Running == nil {
		t.Fatalf("sidecar status %+v", sc)
	}
	// nodeapp's first call, made before anything else it does, found the sidecar ready: the
	// kubelet held the app until the sidecar's startup probe passed.
	if ev := waitAppEvent(t, p, "sidecar-first-try"); ev["status"] != float64(http.StatusOK) {
		t.Fatalf("the app's first call to the sidecar: %v", ev)
	}
	if ids, err := node.Containers("apps", "app"); err != nil || len(ids) < 3 { // sandbox, sidecar, app
		t.Fatalf("containers of the running pod: %v, %v", ids, err)
	}

	r := call(t, p, "GET", "/v1/datasets", "user-ds-1", nil)
	var list struct {
		Datasets []struct{ ID string } `json:"datasets"`
	}
	if err := json.Unmarshal([]byte(r.Body), &list); r.Status != http.StatusOK || err != nil {
		t.Fatalf("listing datasets: %d %s", r.Status, r.Body)
	}
	if len(list.Datasets) != 1 || list.Datasets[0].ID != "prod-dataset-1" {
		t.Fatalf("datasets owner and user-ds-1 may both read: %s", r.Body)
	}

	s := stage(t, p, "user-ds-1", "prod-dataset-1", "sales.csv", 600)
	if path.Dir(s.Path) != contract.DataDir+"/user=user-ds-1" {
		t.Fatalf("staged at %s, want a file in %s/user=user-ds-1", s.Path, contract.DataDir)
	}
	want := snapshotFiles["prod/dataset-1/rw/sales.csv"]
	got := in(t, p, Op{Op: "read", Path: s.Path})
	sum := sha256.Sum256([]byte(got.Data))
	if got.Error != "" || got.Data != want || hex.EncodeToString(sum[:]) != s.SHA256 {
		t.Fatalf("reading %s in the app: %+v (sidecar said sha256 %s)", s.Path, got, s.SHA256)
	}

	for _, p2 := range []string{s.Path, contract.DataDir + "/new.txt", contract.DataDir + "/user=user-ds-1/new.txt"} {
		if w := in(t, p, Op{Op: "write", Path: p2, Body: "overwritten"}); w.Errno != int(syscall.EROFS) {
			t.Errorf("writing %s from the app: %+v, want EROFS", p2, w)
		}
	}
	if got := in(t, p, Op{Op: "read", Path: s.Path}); got.Data != want {
		t.Errorf("the copy changed: %q", got.Data)
	}

	walk := in(t, p, Op{Op: "walk", Path: "/"})
	if !slices.Contains(walk.Entries, s.Path) {
		t.Fatalf("walking / in the app did not find the staged copy: %v", walk)
	}
	for _, e := range walk.Entries {
		if strings.HasPrefix(e, "/warden") || strings.Contains(e, "warden.dev") || path.Base(e) == "token" {
			t.Errorf("the app container sees %s", e)
		}
	}
	mounts := in(t, p, Op{Op: "read", Path: "/proc/self/mountinfo"})
	dataMounts := 0
	for _, l := range strings.Split(mounts.Data, "\n") {
		for _, hidden := range []string{contract.VolumeState, contract.VolumeToken, contract.VolumeSnapshots, snapshots} {
			if strings.Contains(l, hidden) {
				t.Errorf("the app container mounts %s: %s", hidden, l)
			}
		}
		if f := strings.Fields(l); len(f) > 5 && f[4] == contract.DataDir {
			dataMounts++
			if !strings.HasSuffix(f[3], "/"+contract.VolumeStaging+"/prod/apps.svc-prod-app-1") || !strings.HasPrefix(f[5], "ro") {
				t.Errorf("%s is mounted from %s (%s), want the owner's folder of the staging volume, read-only", contract.DataDir, f[3], f[5])
			}
		}
	}
	if dataMounts != 1 {
		t.Errorf("%d mounts at %s:\n%s", dataMounts, contract.DataDir, mounts.Data)
	}
	sidecarOffLoopback(t, p)
}

// sidecarOffLoopback checks what of a running sidecar the network reaches, as Prometheus (or
// anyone else) would from another pod or a node: /metrics on --sidecar-metrics-port, with the
// requests the app made; nothing else there; and not the API, which stays on loopback.
func sidecarOffLoopback(t *testing.T, p *corev1.Pod) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	get := func(url string) (int, string, error) {
		resp, err := client.Get(url)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	metrics := fmt.Sprintf("http://%s:%d", p.Status.PodIP, sidecarMetricsPort)
	code, body, err := get(metrics + "/metrics")
	if err != nil || code != http.StatusOK || !strings.Contains(body, `warden_sidecar_requests_total{code="201",route="/v1/datasets/{id}/stage"}`) {
		t.Fatalf("scraping %s/metrics: %d %v\n%.2000s", metrics, code, err, body)
	}
	for _, path := range []string{"/v1/datasets", "/readyz", "/v1/secrets"} {
		if code, _, err := get(metrics + path); err != nil || code != http.StatusNotFound {
			t.Errorf("%s%s on the metrics port: %d %v, want 404", metrics, path, code, err)
		}
	}
	api := fmt.Sprintf("http://%s:%d/v1/datasets", p.Status.PodIP, contract.DefaultSidecarPort)
	if code, _, err := get(api); err == nil {
		t.Errorf("the sidecar API answers on the pod IP (%s): %d", api, code)
	}
}

// (2) Broker mode from inside the pod: the sidecar shows the broker its projected token, the
// broker's TokenReview names this very pod, and a dataset the owner is not granted is refused.
func TestBroker(t *testing.T) {
	p := running(t, create(t, appPod("apps", "broker", "svc-prod-app-1", "serve")))

	if r := call(t, p, "GET", "/v1/datasets/prod-dataset-2/access", "", nil); r.Status != http.StatusForbidden {
		t.Errorf("access to an ungranted dataset: %d %s", r.Status, r.Body)
	}
	// user-ds-2 may read prod-dataset-2, the owner may not: both must.
	if r := call(t, p, "POST", "/v1/datasets/prod-dataset-2/stage", "user-ds-2", map[string]any{"path": "payroll.csv"}); r.Status != http.StatusForbidden {
		t.Errorf("staging from an ungranted dataset: %d %s", r.Status, r.Body)
	}
	if r := call(t, p, "GET", "/v1/datasets/prod-dataset-1/files", "", nil); r.Status != http.StatusOK || !strings.Contains(r.Body, "sales.csv") {
		t.Errorf("listing a granted dataset: %d %s", r.Status, r.Body)
	}
	stage(t, p, "", "prod-dataset-1", "sales.csv", 60)

	// What the broker decided, and for which pod: the pod is the one named by the certificate
	// the kubelet obtained for this pod's sidecar.
	var allowed, denied bool
	for _, l := range webhookLog.lines("grant") {
		if l["pod"] != "apps/broker" {
			continue
		}
		switch {
		case l["dataset"] == "prod-dataset-1" && l["allowed"] == true:
			allowed = true
		case l["dataset"] == "prod-dataset-2" && l["allowed"] == false:
			denied = true
		}
	}
	if !allowed || !denied {
		t.Errorf("broker grant log for pod apps/broker: allowed prod-dataset-1 %v, denied prod-dataset-2 %v\n%v", allowed, denied, webhookLog.lines("grant"))
	}
	// The sidecar's audit names the pod too.
	logs, err := node.Logs(p, contract.SidecarName)
	if err != nil {
		t.Fatal(err)
	}
	var audited bool
	for _, l := range strings.Split(logs, "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(l), &rec) == nil && rec["action"] == "stage" && rec["dataset"] == "prod-dataset-2" {
			audited = rec["outcome"] == "denied" && strings.Contains(rec["pod"].(string), "broker")
		}
	}
	if !audited {
		t.Errorf("no denied stage of prod-dataset-2 for pod broker in the sidecar's audit:\n%s", logs)
	}
}

// (3) Secrets from inside the pod through Vault's Kubernetes auth; deleting the pod revokes the
// sidecar's Vault token.
func TestSecrets(t *testing.T) {
	ctx := context.Background()
	kv := vault.Root.KVv2("secret")
	if _, err := kv.Put(ctx, "warden/apps/svc-secrets", map[string]any{"greeting": "hello from vault"}); err != nil {
		t.Fatal(err)
	}
	if toks, err := vault.tokensOf("apps", "svc-secrets"); err != nil || len(toks) != 0 {
		t.Fatalf("Vault tokens of apps/svc-secrets before its pod: %v %v", toks, err)
	}
	p := running(t, create(t, appPod("apps", "secrets", "svc-secrets", "serve")))

	r := call(t, p, "GET", "/v1/secrets/greeting", "", nil)
	if r.Status != http.StatusOK || !strings.Contains(r.Body, `"hello from vault"`) {
		t.Fatalf("reading a secret in the pod: %d %s", r.Status, r.Body)
	}
	r = call(t, p, "PUT", "/v1/secrets", "", map[string]string{"greeting": "hello from vault", "written-in-pod": "yes"})
	if r.Status != http.StatusNoContent {
		t.Fatalf("writing secrets in the pod: %d %s", r.Status, r.Body)
	}
	sec, err := kv.Get(ctx, "warden/apps/svc-secrets")
	if err != nil || sec.Data["written-in-pod"] != "yes" {
		t.Fatalf("Vault after the pod's write: %v %v", sec, err)
	}

	toks, err := vault.tokensOf("apps", "svc-secrets")
	if err != nil || len(toks) != 1 {
		t.Fatalf("live Vault tokens of the pod's sidecar: %v %v", toks, err)
	}
	deletePod(t, p) // returns once the kubelet has stopped every container
	if vault.alive(toks[0]) {
		t.Errorf("the sidecar's Vault token (accessor %s) outlived its pod", toks[0])
	}
}

// (4) A job pod completes: the app exits, the native sidecar stops on SIGTERM (exit 0, not
// killed after the grace period), and the pod Succeeds.
func TestJob(t *testing.T) {
	p := appPod("apps", "job", "svc-job", "job", "prod-dataset-1", "sales.csv")
	p.Labels = map[string]string{contract.LabelWorkload: string(contract.WorkloadJob)}
	p.Spec.RestartPolicy = corev1.RestartPolicyNever
	p = waitPod(t, create(t, p), "finished", func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
	})
	if p.Status.Phase != corev1.PodSucceeded {
		t.Fatalf("job pod %s\n%s", p.Status.Phase, describe(p))
	}
	for _, c := range []string{"app", contract.SidecarName} {
		s := status(p, c)
		if s == nil || s.State.Terminated == nil || s.State.Terminated.ExitCode != 0 {
			t.Errorf("%s: %+v, want terminated with exit code 0", c, s)
		}
	}
	ev := waitAppEvent(t, p, "staged")
	if !strings.HasPrefix(ev["path"].(string), contract.DataDir+"/apps.svc-job/") || ev["head"] != "region,amount" {
		t.Errorf("the job's staged copy: %v", ev)
	}
}

// (5) The sidecar killed mid-life is restarted by the kubelet; copies staged before survive with
// their expiry (the state volume), and the app keeps working without a restart of its own.
func TestSidecarRestart(t *testing.T) {
	p := running(t, create(t, appPod("apps", "restart", "svc-prod-app-1", "serve")))
	long := stage(t, p, "", "prod-dataset-1", "sales.csv", 3600)
	short := stage(t, p, "", "prod-dataset-1", "costs.csv", 15)
	if m := stateOf(t, p, long.Name); m == nil || !m.ExpiresAt.Equal(long.ExpiresAt) {
		t.Fatalf("state of %s: %+v, want expiry %v", long.Name, m, long.ExpiresAt)
	}

	before := status(p, contract.SidecarName)
	id := kubenode.ContainerID(p, contract.SidecarName)
	if err := node.Kill(id); err != nil {
		t.Fatal(err)
	}
	p = waitPod(t, p, "sidecar restarted and ready", func(p *corev1.Pod) bool {
		s := status(p, contract.SidecarName)
		return s != nil && s.RestartCount > before.RestartCount && s.Ready && kubenode.ContainerID(p, contract.SidecarName) != id
	})
	if s := status(p, contract.SidecarName); s.LastTerminationState.Terminated == nil || s.LastTerminationState.Terminated.ExitCode != 137 {
		t.Errorf("the sidecar's last termination: %+v, want SIGKILL", s.LastTerminationState)
	}
	if s := status(p, "app"); s.RestartCount != 0 || s.State.Running == nil {
		t.Errorf("the app container: %+v", s)
	}

	if got := in(t, p, Op{Op: "read", Path: long.Path}); got.Data != snapshotFiles["prod/dataset-1/rw/sales.csv"] {
		t.Fatalf("the copy staged before the restart: %+v", got)
	}
	if m := stateOf(t, p, long.Name); m == nil || !m.ExpiresAt.Equal(long.ExpiresAt) {
		t.Errorf("state of %s after the restart: %+v, want expiry %v", long.Name, m, long.ExpiresAt)
	}
	again := stage(t, p, "", "prod-dataset-1", "sales.csv", 60)
	if got := in(t, p, Op{Op: "read", Path: again.Path}); got.Error != "" {
		t.Errorf("a copy staged after the restart: %+v", got)
	}
	// The restarted sidecar's janitor removes the short-lived copy when it expires, from the
	// schedule it rebuilt out of the state volume.
	deadline := short.ExpiresAt.Add(podTimeout)
	for in(t, p, Op{Op: "read", Path: short.Path}).Errno != int(syscall.ENOENT) {
		if time.Now().After(deadline) {
			t.Fatalf("%s (expired at %v) is still there", short.Path, short.ExpiresAt)
		}
		time.Sleep(500 * time.Millisecond)
	}
	// It knows the earlier copy, too: deleting it is only allowed for copies it has metadata for.
	if r := call(t, p, "DELETE", "/v1/staged/"+long.Name, "", nil); r.Status != http.StatusNoContent {
		t.Errorf("deleting the earlier copy after the restart: %d %s", r.Status, r.Body)
	}
	if got := in(t, p, Op{Op: "read", Path: long.Path}); got.Errno != int(syscall.ENOENT) {
		t.Errorf("the deleted copy: %+v", got)
	}
}

type meta struct {
	Name      string    `json:"name"`
	ExpiresAt time.Time `json:"expires_at"`
}

// stateOf reads a staged copy's metadata from the pod's state volume, on the host.
func stateOf(t testing.TB, p *corev1.Pod, name string) *meta {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(node.VolumeDir(string(p.UID), "kubernetes.io~empty-dir", contract.VolumeState), name+".json"))
	if err != nil {
		t.Logf("state of %s: %v", name, err)
		return nil
	}
	var m meta
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return &m
}

// (6) What the app container sees at /secure/datasets/data: an app (or job) sees one folder per
// caller; a workspace sees only its owner's own copies, and stages for nobody else.
func TestLayouts(t *testing.T) {
	app := running(t, create(t, appPod("apps", "layout-app", "svc-prod-app-1", "serve")))
	own := stage(t, app, "", "prod-dataset-1", "sales.csv", 300)
	user := stage(t, app, "user-ds-1", "prod-dataset-1", "sales.csv", 300)
	if path.Dir(own.Path) != contract.DataDir+"/apps.svc-prod-app-1" || path.Dir(user.Path) != contract.DataDir+"/user=user-ds-1" {
		t.Errorf("app layout: owner's copy at %s, user's at %s", own.Path, user.Path)
	}
	if ls := in(t, app, Op{Op: "ls", Path: contract.DataDir}); !equal(ls.Entries, "apps.svc-prod-app-1", "user=user-ds-1") {
		t.Errorf("the app sees %v in %s", ls.Entries, contract.DataDir)
	}

	wsPod := appPod("ws", "layout-ws", "user-ds-1", "serve")
	wsPod.Labels = map[string]string{contract.LabelWorkload: string(contract.WorkloadWorkspace)}
	ws := running(t, create(t, wsPod))
	if st := injected(t, ws); st.Workload != contract.WorkloadWorkspace || st.Environment != "dev" {
		t.Fatalf("workspace status %+v", st)
	}
	mine := stage(t, ws, "", "dev-dataset-1", "sub/deeper.txt", 300)
	if path.Dir(mine.Path) != contract.DataDir {
		t.Errorf("workspace copy at %s, want it directly in %s", mine.Path, contract.DataDir)
	}
	if got := in(t, ws, Op{Op: "read", Path: mine.Path}); got.Data != snapshotFiles["dev/dataset-1/rw/sub/deeper.txt"] {
		t.Errorf("reading the workspace copy: %+v", got)
	}
	if ls := in(t, ws, Op{Op: "ls", Path: contract.DataDir}); !equal(ls.Entries, path.Base(mine.Path)) {
		t.Errorf("the workspace sees %v in %s", ls.Entries, contract.DataDir)
	}
	if r := call(t, ws, "POST", "/v1/datasets/dev-dataset-1/stage", "user-ds-2", map[string]any{"path": "notes.txt"}); r.Status != http.StatusForbidden {
		t.Errorf("a workspace staging for another user: %d %s", r.Status, r.Body)
	}
}

func equal(got []string, want ...string) bool {
	got = slices.Clone(got)
	sort.Strings(got)
	sort.Strings(want)
	return slices.Equal(got, want)
}

// (7) The isolation suite's worst cases on the node: the API server refuses the pod, so it never
// exists and the kubelet never runs a container of it.
func TestRefusedPodsNeverRun(t *testing.T) {
	cases := []struct {
		name, mentions string // what the refusal must name for the person who applied the pod
		edit           func(*corev1.Pod)
	}{
		{"token-by-name", `"warden-token"`, func(p *corev1.Pod) {
			// The app mounting a projected token named like Warden's, audience warden.
			p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: contract.VolumeToken, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
				Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Audience: contract.TokenAudience, Path: "token"}}},
			}}})
			p.Spec.Containers[0].VolumeMounts = append(p.Spec.Containers[0].VolumeMounts, corev1.VolumeMount{Name: contract.VolumeToken, MountPath: "/token"})
		}},
		{"host-root", "host path /,", func(p *corev1.Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}})
			p.Spec.Containers[0].VolumeMounts = append(p.Spec.Containers[0].VolumeMounts, corev1.VolumeMount{Name: "host", MountPath: "/host", ReadOnly: true})
		}},
		{"share-process", "shareProcessNamespace", func(p *corev1.Pod) {
			p.Spec.ShareProcessNamespace = ptr.To(true)
		}},
		{"host-pid", "hostPID", func(p *corev1.Pod) {
			p.Spec.HostPID = true
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := appPod("apps", "refused-"+c.name, "svc-prod-app-1", "serve")
			c.edit(p)
			_, err := kube.CoreV1().Pods("apps").Create(context.Background(), p, metav1.CreateOptions{})
			if err == nil {
				t.Cleanup(func() { deletePod(t, p) })
				t.Fatalf("pod admitted")
			}
			if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), c.mentions) {
				t.Errorf("refusal %q does not name %s", err, c.mentions)
			}
			if _, err := kube.CoreV1().Pods("apps").Get(context.Background(), p.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("the refused pod exists: %v", err)
			}
			if ids, err := node.Containers("apps", p.Name); err != nil || len(ids) != 0 {
				t.Errorf("containers of the refused pod on the node: %v %v", ids, err)
			}
		})
	}
}

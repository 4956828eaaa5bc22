package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	admissionregv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/warden-dev/warden/internal/testing/testenv"
	"github.com/warden-dev/warden/pkg/contract"
)

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

func ensureNamespace(t testing.TB, name string, optIn bool) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if optIn {
		ns.Labels = map[string]string{contract.LabelInject: contract.LabelInjectEnabled}
	}
	_, err := kube.CoreV1().Namespaces().Create(ctx(t), ns, metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		require.NoError(t, err)
	}
}

func ensureServiceAccount(t testing.TB, ns, name string) {
	t.Helper()
	_, err := kube.CoreV1().ServiceAccounts(ns).Create(ctx(t), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		require.NoError(t, err)
	}
}

func newPod(name, sa string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			ServiceAccountName: sa,
			Containers:         []corev1.Container{{Name: "app", Image: "python:3.12", Command: []string{"sleep", "infinity"}}},
		},
	}
}

func createPod(t testing.TB, ns string, p *corev1.Pod, dryRun bool) (*corev1.Pod, error) {
	t.Helper()
	opts := metav1.CreateOptions{}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	return kube.CoreV1().Pods(ns).Create(ctx(t), p, opts)
}

func setup(t testing.TB) {
	ensureNamespace(t, "apps", true)
	ensureNamespace(t, "ws", true)
	ensureNamespace(t, "plain", false)
	ensureServiceAccount(t, "apps", "svc-prod-app-1")
	ensureServiceAccount(t, "apps", "intruder")
	ensureServiceAccount(t, "apps", "svc-new")
	ensureServiceAccount(t, "ws", "user-ds-1")
	ensureServiceAccount(t, "plain", "whoever")
}

func sidecarsOf(p *corev1.Pod) (n int) {
	for _, c := range append(append([]corev1.Container{}, p.Spec.InitContainers...), p.Spec.Containers...) {
		if c.Name == contract.SidecarName {
			n++
		}
	}
	return n
}

func TestAllowedOwnerIsInjected(t *testing.T) {
	setup(t)
	p, err := createPod(t, "apps", newPod("injected", "svc-prod-app-1"), false)
	require.NoError(t, err)
	stored, err := kube.CoreV1().Pods("apps").Get(ctx(t), p.Name, metav1.GetOptions{})
	require.NoError(t, err)

	require.Equal(t, 1, sidecarsOf(stored))
	sc := stored.Spec.InitContainers[0]
	assert.Equal(t, contract.SidecarName, sc.Name)
	assert.Equal(t, corev1.ContainerRestartPolicyAlways, *sc.RestartPolicy)
	assert.Equal(t, "ghcr.io/warden-dev/warden-sidecar:e2e", sc.Image)
	assert.Contains(t, sc.Args, "--owner=apps/svc-prod-app-1")
	require.NotNil(t, sc.Lifecycle, "the postStart hook holds the app until the sidecar answers")
	assert.Contains(t, sc.Lifecycle.PostStart.Exec.Command, "--wait=1m0s")

	vols := map[string]corev1.Volume{}
	for _, v := range stored.Spec.Volumes {
		vols[v.Name] = v
	}
	require.Contains(t, vols, contract.VolumeToken)
	// As the API server stored it: the pod certificate from Warden's signer (the broker's
	// identity) and, with Vault configured, the token Vault's login takes.
	srcs := vols[contract.VolumeToken].Projected.Sources
	require.Len(t, srcs, 2)
	require.NotNil(t, srcs[0].PodCertificate)
	assert.Equal(t, contract.SignerName, srcs[0].PodCertificate.SignerName)
	assert.Equal(t, "credentials.pem", srcs[0].PodCertificate.CredentialBundlePath)
	require.NotNil(t, srcs[1].ServiceAccountToken)
	assert.Equal(t, "warden", srcs[1].ServiceAccountToken.Audience)
	require.Contains(t, vols, contract.VolumeSnapshots)
	require.Contains(t, vols, contract.VolumeStaging)

	app := stored.Spec.Containers[0]
	env := map[string]string{}
	for _, e := range app.Env {
		env[e.Name] = e.Value
	}
	assert.Equal(t, "8787", env[contract.EnvPort])
	assert.Equal(t, contract.DataDir, env[contract.EnvDataDir])
	var dataMount *corev1.VolumeMount
	for i, m := range app.VolumeMounts {
		switch m.Name {
		case contract.VolumeStaging:
			dataMount = &app.VolumeMounts[i]
		case contract.VolumeSnapshots, contract.VolumeToken, contract.VolumeState:
			t.Errorf("app container mounts %s", m.Name)
		}
	}
	require.NotNil(t, dataMount)
	assert.True(t, dataMount.ReadOnly)
	assert.Equal(t, "prod/apps.svc-prod-app-1", dataMount.SubPath)

	var st contract.Status
	require.NoError(t, json.Unmarshal([]byte(stored.Annotations[contract.AnnotationStatus]), &st))
	assert.Equal(t, "apps/svc-prod-app-1", st.Owner)

	// An update of the stored pod goes through and duplicates nothing.
	stored.Labels = map[string]string{"touched": "yes"}
	updated, err := kube.CoreV1().Pods("apps").Update(ctx(t), stored, metav1.UpdateOptions{})
	require.NoError(t, err)
	assert.Equal(t, 1, sidecarsOf(updated))
	assert.Len(t, updated.Spec.Volumes, len(stored.Spec.Volumes))
}

func TestWorkspaceLayout(t *testing.T) {
	setup(t)
	p := newPod("workspace", "user-ds-1")
	p.Labels = map[string]string{contract.LabelWorkload: "workspace"}
	stored, err := createPod(t, "ws", p, false)
	require.NoError(t, err)
	for _, m := range stored.Spec.Containers[0].VolumeMounts {
		if m.Name == contract.VolumeStaging {
			assert.Equal(t, "dev/ws.user-ds-1/ws.user-ds-1", m.SubPath)
			return
		}
	}
	t.Fatal("no data mount")
}

func TestUnknownOwnerIsRefused(t *testing.T) {
	setup(t)
	_, err := createPod(t, "apps", newPod("intruder", "intruder"), false)
	require.Error(t, err)
	assert.True(t, apierrors.IsForbidden(err), "%v", err)
	assert.Contains(t, err.Error(), `service account "apps/intruder" is not a Warden owner`)
	assert.Contains(t, err.Error(), "spec.serviceAccountName")
	_, err = kube.CoreV1().Pods("apps").Get(ctx(t), "intruder", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "refused pod must not exist")
}

func TestIsolationBreakersAreRefused(t *testing.T) {
	setup(t)
	share := newPod("share", "svc-prod-app-1")
	share.Spec.ShareProcessNamespace = ptr.To(true)
	_, err := createPod(t, "apps", share, true)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "shareProcessNamespace")

	mount := newPod("mount", "svc-prod-app-1")
	mount.Spec.Volumes = []corev1.Volume{{Name: "raw", VolumeSource: corev1.VolumeSource{
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "warden-snapshots"}}}}
	_, err = createPod(t, "apps", mount, true)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "which is the dataset share")

	fake := newPod("fake", "svc-prod-app-1")
	fake.Spec.Containers = append(fake.Spec.Containers, corev1.Container{Name: contract.SidecarName, Image: "evil"})
	_, err = createPod(t, "apps", fake, true)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "like Warden's sidecar")
}

func TestNamespaceWithoutLabelIsUntouched(t *testing.T) {
	setup(t)
	stored, err := createPod(t, "plain", newPod("plain", "whoever"), false)
	require.NoError(t, err)
	assert.Equal(t, 0, sidecarsOf(stored))
	assert.NotContains(t, stored.Annotations, contract.AnnotationStatus)
}

// A webhook ordered after Warden adds a container; the API server re-invokes Warden
// (reinvocationPolicy IfNeeded), which must give the new container its mount and add nothing else.
func TestReinvocationDuplicatesNothing(t *testing.T) {
	setup(t)
	late := httptest.NewUnstartedServer(http.HandlerFunc(lateAdder))
	late.StartTLS()
	defer late.Close()
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: late.Certificate().Raw})
	mwc := &admissionregv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "zz-e2e-late-adder"},
		Webhooks: []admissionregv1.MutatingWebhook{{
			Name:                    "late.e2e.warden.dev",
			AdmissionReviewVersions: []string{"v1"},
			ClientConfig:            admissionregv1.WebhookClientConfig{URL: ptr.To(late.URL + "/"), CABundle: caPEM},
			SideEffects:             ptr.To(admissionregv1.SideEffectClassNone),
			FailurePolicy:           ptr.To(admissionregv1.Fail),
			ObjectSelector:          &metav1.LabelSelector{MatchLabels: map[string]string{"e2e-late": "yes"}},
			Rules: []admissionregv1.RuleWithOperations{{
				Operations: []admissionregv1.OperationType{admissionregv1.Create},
				Rule:       admissionregv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
			}},
		}},
	}
	_, err := kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx(t), mwc, metav1.CreateOptions{})
	require.NoError(t, err)
	defer kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(context.Background(), mwc.Name, metav1.DeleteOptions{})

	p := newPod("reinvoked", "svc-prod-app-1")
	p.Labels = map[string]string{"e2e-late": "yes"}
	var stored *corev1.Pod
	// The API server's webhook configuration cache picks the new configuration up asynchronously.
	require.Eventually(t, func() bool {
		stored, err = createPod(t, "apps", p, true)
		return err == nil && len(stored.Spec.Containers) == 2
	}, time.Minute, 200*time.Millisecond, "late webhook never ran: %v", err)

	require.Equal(t, 1, sidecarsOf(stored))
	names := map[string]int{}
	for _, v := range stored.Spec.Volumes {
		names[v.Name]++
	}
	for _, n := range []string{contract.VolumeStaging, contract.VolumeSnapshots, contract.VolumeState, contract.VolumeToken} {
		assert.Equal(t, 1, names[n], n)
	}
	for _, c := range stored.Spec.Containers {
		count := 0
		for _, m := range c.VolumeMounts {
			if m.Name == contract.VolumeStaging {
				count++
			}
		}
		assert.Equal(t, 1, count, "container %s has the data mount once", c.Name)
		envs := 0
		for _, e := range c.Env {
			if e.Name == contract.EnvPort {
				envs++
			}
		}
		assert.Equal(t, 1, envs, "container %s has WARDEN_PORT once", c.Name)
	}
}

// lateAdder is a mutating webhook that appends a "late" container to the pod.
func lateAdder(w http.ResponseWriter, r *http.Request) {
	var review admissionv1.AdmissionReview
	if err := json.NewDecoder(r.Body).Decode(&review); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	var pod corev1.Pod
	_ = json.Unmarshal(review.Request.Object.Raw, &pod)
	resp := &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true}
	has := false
	for _, c := range pod.Spec.Containers {
		has = has || c.Name == "late"
	}
	if !has {
		patch, _ := json.Marshal([]map[string]any{{"op": "add", "path": "/spec/containers/-", "value": map[string]any{"name": "late", "image": "busybox"}}})
		pt := admissionv1.PatchTypeJSONPatch
		resp.Patch, resp.PatchType = patch, &pt
	}
	review.Response = resp
	review.Request = nil
	_ = json.NewEncoder(w).Encode(review)
}

func TestEphemeralContainerCannotTargetSidecar(t *testing.T) {
	setup(t)
	p, err := createPod(t, "apps", newPod("debugged", "svc-prod-app-1"), false)
	require.NoError(t, err)
	p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{
		EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "dbg", Image: "busybox"},
		TargetContainerName:      contract.SidecarName,
	}}
	_, err = kube.CoreV1().Pods("apps").UpdateEphemeralContainers(ctx(t), p.Name, p, metav1.UpdateOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "targets the Warden sidecar")

	p.Spec.EphemeralContainers[0].TargetContainerName = "app"
	_, err = kube.CoreV1().Pods("apps").UpdateEphemeralContainers(ctx(t), p.Name, p, metav1.UpdateOptions{})
	require.NoError(t, err)
}

func writePolicy(t *testing.T, content string) {
	t.Helper()
	// Write then rename, like a ConfigMap update, so the watcher never sees half a file.
	tmp := policyFile + ".tmp"
	require.NoError(t, os.WriteFile(tmp, []byte(content), 0o644))
	require.NoError(t, os.Rename(tmp, policyFile))
}

func readyz(t *testing.T) (int, string) {
	resp, err := http.Get(healthURL + "/readyz")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestPolicyEditsWhileRunning(t *testing.T) {
	setup(t)
	t.Cleanup(func() { writePolicy(t, initialPolicy) })

	_, err := createPod(t, "apps", newPod("new-owner", "svc-new"), true)
	require.Error(t, err, "svc-new is not an owner yet")

	writePolicy(t, strings.Replace(initialPolicy, "owners:\n", "owners:\n  - serviceAccount: apps/svc-new\n    environment: test\n", 1))
	require.Eventually(t, func() bool {
		_, err = createPod(t, "apps", newPod("new-owner", "svc-new"), true)
		return err == nil
	}, time.Minute, 100*time.Millisecond, "new owner never admitted: %v", err)

	// A broken edit: the last good policy (with svc-new) stays in force; /readyz stays 200 and
	// names the broken file.
	writePolicy(t, "owners:\n  - serviceAccount: apps/svc-new\n    environment: staging\n")
	require.Eventually(t, func() bool {
		_, body := readyz(t)
		return strings.Contains(body, "is broken")
	}, time.Minute, 100*time.Millisecond)
	code, body := readyz(t)
	assert.Equal(t, 200, code, body)
	assert.Contains(t, body, policyFile)
	assert.Contains(t, body, `line 2`)
	_, err = createPod(t, "apps", newPod("still-ok", "svc-new"), true)
	assert.NoError(t, err, "last good policy still admits svc-new")
	_, err = createPod(t, "apps", newPod("still-refused", "intruder"), true)
	assert.Error(t, err, "last good policy still refuses intruder")

	resp, err := http.Get(healthURL + "/metrics")
	require.NoError(t, err)
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Contains(t, string(metrics), "warden_policy_healthy 0")
	assert.Contains(t, string(metrics), `warden_admission_requests_total{outcome="injected"}`)
	assert.Contains(t, string(metrics), `warden_admission_denials_total{reason="unknown-owner"}`)
	assert.Contains(t, string(metrics), "warden_admission_duration_seconds_bucket")
}

// Rotating the serving certificate (same CA, as cert-manager or the certs/ script renew it)
// reaches the running server without a restart.
func TestCertificateRotation(t *testing.T) {
	setup(t)
	before := servedSerial(t)
	out, err := exec.Command(filepath.Join(testenv.RepoRoot(), "certs/gen-certs.sh"), "--out", env.CertDir, "--no-apply", "--san", "IP:127.0.0.1", "--san", "DNS:localhost").CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Eventually(t, func() bool { return servedSerial(t) != before }, time.Minute, 100*time.Millisecond)
	_, err = createPod(t, "apps", newPod("after-rotation", "svc-prod-app-1"), true)
	require.NoError(t, err, "the API server still trusts the rotated certificate")
}

func servedSerial(t *testing.T) string {
	conn, err := tls.Dial("tcp", net.JoinHostPort(env.Host, strconv.Itoa(env.Port)), &tls.Config{InsecureSkipVerify: true})
	require.NoError(t, err)
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

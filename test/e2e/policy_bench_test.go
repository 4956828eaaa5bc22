package e2e

// BenchmarkPolicyScale (`make bench-policy`): the policy as objects at platform scale on the real
// API server. It creates POLICY_OWNERS owners (default 10,000) and POLICY_DATASETS datasets
// (default 50,000) with 20 readers each through the API, then reports:
//
//   - create-s: creating them all through the API (16 clients)
//   - sync-s: a fresh webhook replica's cache sync of all of them (objects only)
//   - heap-MB: that replica's cache and indexes (Go heap after sync minus before, after GC)
//   - rss-MB: the webhook binary's resident memory once synced (a separate process)
//   - admit-p50-us (file-owner, object-owner, file-only): /mutate-v1-pod over TLS against that
//     binary, sequential, for an owner from the file and from the objects, and against the same
//     binary with the objects off
//   - list-p99-us: one owner and caller's readable datasets (the broker's grant List, in process)
//   - reader-p99-ms: a reader added to a Dataset until the broker's grants answer yes

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	webhookapp "github.com/warden-dev/warden/cmd/webhook/app"
	"github.com/warden-dev/warden/internal/testing/podfixture"
	"github.com/warden-dev/warden/pkg/admission"
	wardenv1 "github.com/warden-dev/warden/pkg/apis/warden/v1alpha1"
	"github.com/warden-dev/warden/pkg/grants"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func BenchmarkPolicyScale(b *testing.B) {
	owners, datasets := envInt("POLICY_OWNERS", 10000), envInt("POLICY_DATASETS", 50000)
	setup(b)
	ensureNamespace(b, "scale", true)
	ensureNamespaceWithRoot(b, "scale-data", "scale")
	c := objectsClient(b, "")

	start := time.Now()
	parallel(b, owners, func(i int) client.Object {
		sa := fmt.Sprintf("scale/svc-%05d", i)
		return &wardenv1.Owner{ObjectMeta: metav1.ObjectMeta{Name: strings.Replace(sa, "/", ".", 1)}, Spec: wardenv1.OwnerSpec{ServiceAccount: sa, Environment: "prod", User: fmt.Sprintf("user-%05d", i)}}
	}, c)
	parallel(b, datasets, func(i int) client.Object {
		readers := make([]wardenv1.Member, 0, 20)
		for r := range 10 { // owners and users spread so every owner reads ~(datasets*10/owners)
			for _, m := range []string{fmt.Sprintf("serviceAccount:scale/svc-%05d", (i*7+r*977)%owners), fmt.Sprintf("user:user-%05d", (i*13+r*331)%owners)} {
				if !slices.Contains(readers, wardenv1.Member(m)) {
					readers = append(readers, wardenv1.Member(m))
				}
			}
		}
		return newDataset("scale-data", fmt.Sprintf("ds-%06d", i), fmt.Sprintf("d/%06d", i), readers...)
	}, c)
	b.ReportMetric(time.Since(start).Seconds(), "create-s")

	// A fresh replica syncs everything.
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	start = time.Now()
	replica := startReplica(b, env.Config, "a-warden-scale", "ghcr.io/warden-dev/warden-sidecar:scale", "", "e2e-scale",
		func(o *webhookapp.Options) { o.PolicyFile = "" })
	b.ReportMetric(time.Since(start).Seconds(), "sync-s")
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.HeapInuse-before.HeapInuse)/(1<<20), "heap-MB")
	writeHeapProfile(b)

	// The leader writes a status on every new object; latency is measured once that settles, as
	// on a cluster whose policy is not being bulk-loaded.
	waitStatuses(b, c, datasets)

	// Listing: the broker's grant source over the replica's view.
	engine := grants.NewPolicyEngine(replica.PolicyView)
	var lat []time.Duration
	for i := range 1200 {
		owner := fmt.Sprintf("scale/svc-%05d", i%owners)
		t0 := time.Now()
		l, err := engine.List(context.Background(), owner, grants.Caller{User: fmt.Sprintf("user-%05d", (i*3)%owners)})
		if err != nil {
			b.Fatal(err)
		}
		if i >= 200 { // warm-up: the first listings parse each dataset once
			lat = append(lat, time.Since(t0))
		}
		_ = l
	}
	b.ReportMetric(float64(percentile(lat, 0.5).Microseconds()), "list-p50-us")
	b.ReportMetric(float64(percentile(lat, 0.99).Microseconds()), "list-p99-us")

	// A reader added reaches the grants.
	lat = lat[:0]
	for i := range 50 {
		id := fmt.Sprintf("ds-%06d", i*991%datasets)
		user := fmt.Sprintf("newcomer-%d", i)
		owner := "scale/svc-00000"
		d := newDataset("scale-data", id, "")
		must(b, retry.RetryOnConflict(retry.DefaultRetry, func() error {
			var cur wardenv1.Dataset
			if err := c.Get(context.Background(), client.ObjectKeyFromObject(d), &cur); err != nil {
				return err
			}
			for _, m := range []wardenv1.Member{wardenv1.Member("user:" + user), wardenv1.Member("serviceAccount:" + owner)} {
				if !slices.Contains(cur.Spec.Readers, m) {
					cur.Spec.Readers = append(cur.Spec.Readers, m)
				}
			}
			return c.Update(context.Background(), &cur)
		}))
		t0 := time.Now()
		for {
			dec, err := engine.Check(context.Background(), owner, grants.Caller{User: user}, id)
			must(b, err)
			if dec.Allowed() {
				break
			}
			if time.Since(t0) > time.Minute {
				b.Fatalf("reader of %s never reached the grants", id)
			}
			time.Sleep(2 * time.Millisecond)
		}
		lat = append(lat, time.Since(t0))
	}
	b.ReportMetric(float64(percentile(lat, 0.99).Milliseconds()), "reader-p99-ms")

	// The binary: resident memory, and admission with owners from the file and the objects.
	for _, mode := range []struct {
		name    string
		objects bool
	}{{"objects", true}, {"file-only", false}} {
		url, health, pid, stop := startWebhookBinary(b, mode.objects)
		if mode.objects {
			b.ReportMetric(rssMB(b, pid), "rss-MB")
			logRuntimeMemory(b, health)
			b.ReportMetric(admitP50(b, url, "scale", "svc-00042"), "admit-object-owner-p50-us")
		}
		b.ReportMetric(admitP50(b, url, "apps", "svc-prod-app-1"), "admit-file-owner-"+mode.name+"-p50-us")
		stop()
	}
}

func must(b testing.TB, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
}

// parallel creates n objects with 16 clients.
func parallel(b *testing.B, n int, mk func(int) client.Object, c client.Client) {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := c.Create(context.Background(), mk(i)); err != nil && !strings.Contains(err.Error(), "already exists") {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[int(float64(len(s)-1)*p)]
}

// startWebhookBinary builds and runs cmd/webhook against the suite's API server.
func startWebhookBinary(b *testing.B, objects bool) (url, health string, pid int, stop func()) {
	dir := b.TempDir()
	bin := filepath.Join(dir, "warden-webhook")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/warden-dev/warden/cmd/webhook").CombinedOutput()
	if err != nil {
		b.Fatalf("build: %v %s", err, out)
	}
	kc := filepath.Join(dir, "kubeconfig")
	must(b, os.WriteFile(kc, env.KubeConfig, 0o600))
	addr := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		must(b, err)
		defer l.Close()
		return l.Addr().String()
	}
	listen := addr()
	health = addr()
	cmd := exec.Command(bin, "--kubeconfig", kc, "--policy", policyFile, "--cert-dir", env.CertDir,
		"--listen", listen, "--health-listen", health, "--broker-listen", "", "--namespace", "warden-system",
		"--policy-objects="+strconv.FormatBool(objects), "--log-level", "error")
	cmd.Stderr = io.Discard
	must(b, cmd.Start())
	stop = func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	deadline := time.Now().Add(5 * time.Minute)
	for {
		resp, err := http.Get("http://" + health + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			stop()
			b.Fatal("webhook binary never ready")
		}
		time.Sleep(100 * time.Millisecond)
	}
	return "https://" + listen + admission.MutatePath, health, cmd.Process.Pid, stop
}

func rssMB(b *testing.B, pid int) float64 {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	must(b, err)
	rss := -1
	for _, l := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(l, "RssAnon:") || strings.HasPrefix(l, "RssFile:") {
			b.Logf("webhook binary %s", strings.Join(strings.Fields(l), " ")) // heap and stacks vs the binary's pages
		}
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			rss, err = strconv.Atoi(strings.Fields(v)[0])
			must(b, err)
		}
	}
	if rss >= 0 {
		return float64(rss) / 1024
	}
	b.Fatal("no VmRSS")
	return 0
}

// admitP50 sends 2000 AdmissionReviews for a realistic pod of ns/sa, one at a time.
func admitP50(b *testing.B, url, ns, sa string) float64 {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM(b))
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	raw, err := json.Marshal(podfixture.Realistic(sa))
	must(b, err)
	review := func(uid int) []byte {
		out, _ := json.Marshal(admissionv1.AdmissionReview{
			TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
			Request: &admissionv1.AdmissionRequest{UID: types.UID("u" + strconv.Itoa(uid)), Namespace: ns, Operation: admissionv1.Create,
				Kind:     metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
				Resource: metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
				Object:   k8sruntime.RawExtension{Raw: raw}},
		})
		return out
	}
	var lat []time.Duration
	for i := range 2200 {
		body := review(i)
		t0 := time.Now()
		resp, err := hc.Post(url, "application/json", bytes.NewReader(body))
		must(b, err)
		var out admissionv1.AdmissionReview
		must(b, json.NewDecoder(resp.Body).Decode(&out))
		resp.Body.Close()
		if out.Response == nil || !out.Response.Allowed {
			b.Fatalf("%s/%s not admitted: %+v", ns, sa, out.Response)
		}
		if i >= 200 { // warm-up
			lat = append(lat, time.Since(t0))
		}
	}
	return float64(percentile(lat, 0.5).Microseconds())
}

// waitStatuses waits until the webhook has written condition Accepted on n Datasets.
func waitStatuses(b *testing.B, c client.Client, n int) {
	deadline := time.Now().Add(30 * time.Minute)
	for {
		done, cont := 0, ""
		for {
			var l wardenv1.DatasetList
			must(b, c.List(context.Background(), &l, client.InNamespace("scale-data"), client.Limit(5000), client.Continue(cont)))
			for i := range l.Items {
				if len(l.Items[i].Status.Conditions) > 0 {
					done++
				}
			}
			if cont = l.Continue; cont == "" {
				break
			}
		}
		if done >= n {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d statuses written", done, n)
		}
		time.Sleep(10 * time.Second)
	}
}

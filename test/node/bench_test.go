//go:build node

package node

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/warden-dev/warden/internal/kubenode"
	"github.com/warden-dev/warden/internal/ociimage"
	"github.com/warden-dev/warden/pkg/contract"
)

// BenchmarkPodStartup: from the create call to the app's first instruction (the time nodeapp
// prints first thing in main), for podStartupRuns pods in an opted-in namespace (injected) and
// as many identical pods in a namespace that is not, alternating, one pod at a time. For the
// injected pods it also splits the time at the sidecar's "serving" line (the runtime's
// timestamp): before it, sandbox, volumes and sidecar start-up; after it, until the app starts,
// the kubelet learning that the sidecar has started (its postStart hold, or a startup probe) and
// starting the app. Run with -benchtime 1x (make bench-node).
//
// "sa-token": both kinds of pod carry the projected service-account token volume the
// ServiceAccount admission plugin adds to every pod in a real cluster (envtest disables the
// plugin), so the baseline pays the kubelet's volume set-up as it would there. "bare": no
// volume at all in the baseline, the lower bound.
func BenchmarkPodStartup(b *testing.B) {
	for _, variant := range []string{"sa-token", "bare"} {
		b.Run(variant, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				podStartup(b, fmt.Sprintf("%s-%d", variant, i), variant == "sa-token")
			}
		})
	}
}

const podStartupRuns = 20

func podStartup(b *testing.B, prefix string, tokenVolume bool) {
	var warden, plain, sidecarUp, probeWait []time.Duration
	for r := 0; r < podStartupRuns; r++ {
		for _, ns := range []string{"apps", "plain"} {
			p := appPod(ns, fmt.Sprintf("startup-%s-%d", prefix, r), "svc-bench", "sleep")
			if tokenVolume {
				withServiceAccountToken(p)
			}
			t0 := time.Now()
			p = create(b, p)
			start := appStart(b, p)
			d := start.Sub(t0)
			if ns == "plain" {
				plain = append(plain, d)
			} else {
				warden = append(warden, d)
				p = running(b, p)
				if serving, ok := sidecarServing(b, p); ok {
					sidecarUp = append(sidecarUp, serving.Sub(t0))
					probeWait = append(probeWait, start.Sub(serving))
				}
			}
			deletePod(b, p)
		}
	}
	b.ReportMetric(ms(pct(warden, 50)), "warden-p50-ms")
	b.ReportMetric(ms(pct(warden, 95)), "warden-p95-ms")
	b.ReportMetric(ms(pct(plain, 50)), "plain-p50-ms")
	b.ReportMetric(ms(pct(plain, 95)), "plain-p95-ms")
	b.ReportMetric(ms(pct(warden, 50)-pct(plain, 50)), "overhead-p50-ms")
	b.ReportMetric(ms(pct(sidecarUp, 50)), "sidecar-serving-p50-ms")
	b.ReportMetric(ms(pct(probeWait, 50)), "serving-to-app-p50-ms")
	b.Logf("injected: %v", warden)
	b.Logf("not opted in: %v", plain)
	b.Logf("injected, create to sidecar serving: %v; sidecar serving to app start: %v", sidecarUp, probeWait)
}

// withServiceAccountToken adds what the ServiceAccount admission plugin adds to a pod in a real
// cluster: a projected token volume mounted into every container.
func withServiceAccountToken(p *corev1.Pod) {
	p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "kube-api-access", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: ptr.To[int64](3607)}}},
	}}})
	for i := range p.Spec.Containers {
		p.Spec.Containers[i].VolumeMounts = append(p.Spec.Containers[i].VolumeMounts,
			corev1.VolumeMount{Name: "kube-api-access", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true})
	}
}

// appStart is when nodeapp's first instruction ran, as it printed it.
func appStart(tb testing.TB, p *corev1.Pod) time.Time {
	tb.Helper()
	ev := waitAppEvent(tb, p, "start")
	ts, err := time.Parse(time.RFC3339Nano, ev["time"].(string))
	if err != nil {
		tb.Fatal(err)
	}
	return ts
}

// sidecarServing is when the sidecar's first run logged that it serves.
func sidecarServing(tb testing.TB, p *corev1.Pod) (time.Time, bool) {
	tb.Helper()
	lines, err := node.LogLines(p, contract.SidecarName)
	if err != nil {
		tb.Fatal(err)
	}
	for _, l := range lines {
		var m map[string]any
		if json.Unmarshal([]byte(l.Text), &m) == nil && m["msg"] == "warden sidecar serving" {
			return l.Time, true
		}
	}
	return time.Time{}, false
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (len(s)*p+99)/100 - 1 // nearest rank
	return s[max(i, 0)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkSidecarMemory: the sidecar's memory in a real pod, idle and after staging 100 files
// (6 KB each) from the app: its process's RSS and its container's memory cgroup (usage, which
// includes the page cache of the copies it wrote, and the cgroup's anonymous memory).
func BenchmarkSidecarMemory(b *testing.B) {
	for i := 0; i < b.N; i++ {
		p := running(b, create(b, appPod("apps", fmt.Sprintf("memory-%d", i), "svc-bench", "serve")))
		call(b, p, "GET", "/v1/datasets", "", nil) // one request first: the idle sidecar has served
		idle := sidecarMemory(b, p)
		for f := 0; f < 100; f++ {
			stage(b, p, "", "prod-dataset-1", fmt.Sprintf("bulk/f-%03d.csv", f), 3600)
		}
		after := sidecarMemory(b, p)
		mib := func(v int64) float64 { return float64(v) / (1 << 20) }
		b.ReportMetric(mib(idle.RSS), "idle-rss-MiB")
		b.ReportMetric(mib(idle.CgroupUsage), "idle-cgroup-MiB")
		b.ReportMetric(mib(after.RSS), "staged100-rss-MiB")
		b.ReportMetric(mib(after.CgroupUsage), "staged100-cgroup-MiB")
		b.ReportMetric(mib(after.CgroupRSS), "staged100-cgroup-anon-MiB")
		deletePod(b, p)
	}
}

func sidecarMemory(tb testing.TB, p *corev1.Pod) kubenode.Memory {
	tb.Helper()
	pid, err := node.PID(kubenode.ContainerID(p, contract.SidecarName))
	if err != nil {
		tb.Fatal(err)
	}
	m, err := kubenode.MemoryOf(pid)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// BenchmarkImages: compressed size of the sidecar and webhook images as `make images` writes
// them, and the time to write each from its binary (the Go build not included).
func BenchmarkImages(b *testing.B) {
	dir := b.TempDir()
	webhookBin := filepath.Join(dir, "warden-webhook")
	t0 := time.Now()
	if err := kubenode.BuildStatic("github.com/warden-dev/warden/cmd/webhook", webhookBin); err != nil {
		b.Fatal(err)
	}
	b.Logf("go build of the webhook: %v; of the sidecar and nodeapp (suite set-up): %v", time.Since(t0).Round(time.Millisecond), imageBuild.Round(time.Millisecond))
	sidecarBin := ""
	for _, r := range imageResults {
		if r.Ref == sidecarImage {
			sidecarBin = filepath.Join(filepath.Dir(r.Path), "warden-sidecar")
		}
	}
	for i := 0; i < b.N; i++ {
		for _, img := range []struct{ name, ref, bin string }{
			{"sidecar", sidecarImage, sidecarBin},
			{"webhook", strings.Replace(sidecarImage, "sidecar", "webhook", 1), webhookBin},
		} {
			start := time.Now()
			r, err := ociimage.Write(filepath.Join(dir, img.name+".tar"), ociimage.Binary(img.ref, img.bin).WithCARoots(ociimage.CARoots))
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(r.CompressedSize)/1e6, img.name+"-compressed-MB")
			b.ReportMetric(ms(time.Since(start)), img.name+"-write-ms")
		}
	}
}

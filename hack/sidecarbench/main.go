// Command sidecarbench measures the sidecar the way the issue asks, in one run on one machine:
//
//   - staging a 1 GiB file, against `cp` + fsync of the same file on the same filesystem (runs
//     in pairs, alternating which goes first; the median of the pairs' ratios);
//
//   - 4 KiB files staged end to end over HTTP (X-Warden-Caller, local grants, copy, sha256,
//     metadata, audit line) at a fixed rate, open-loop, with the real bin/warden-sidecar;
//
//   - the sidecar's time from exec to a 200 on /readyz, and its idle RSS.
//
//     go run ./hack/sidecarbench -bin bin/warden-sidecar [-dir /var/tmp] [-rate 200 -duration 20s]
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/warden-dev/warden/internal/testing/openloop"
	"github.com/warden-dev/warden/pkg/contract"
	"github.com/warden-dev/warden/pkg/stage"
)

// settle is how long the run's end is given before the second RSS reading: the sidecar's quiet
// period before it trims (5 s, counted from the metrics request just before) plus its 1 s tick.
const settle = 8 * time.Second

func main() {
	bin := flag.String("bin", "bin/warden-sidecar", "sidecar binary")
	dir := flag.String("dir", os.TempDir(), "directory (filesystem) to benchmark on")
	size := flag.Int64("size", 1<<30, "size of the large file")
	rounds := flag.Int("rounds", 5, "pairs of cp and stage runs for the large file")
	rate := flag.Int("rate", 200, "small-file stages per second")
	duration := flag.Duration("duration", 20*time.Second, "small-file measuring time")
	syncCopies := flag.Bool("sync-copies", false, "run the sidecar with --sync-copies (as the webhook injects a non-native sidecar; native ones, the default, run without)")
	flag.Parse()
	if err := run(*bin, *dir, *size, *rounds, *rate, *duration, *syncCopies); err != nil {
		fmt.Fprintln(os.Stderr, "sidecarbench:", err)
		os.Exit(1)
	}
}

func run(bin, dir string, size int64, rounds, rate int, duration time.Duration, syncCopies bool) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	base, err := os.MkdirTemp(dir, "warden-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(base)
	share, staging, state := filepath.Join(base, "share"), filepath.Join(base, "staging"), filepath.Join(base, "state")
	snap := filepath.Join(share, "prod/big/rw")
	if err := os.MkdirAll(snap, 0o755); err != nil {
		return err
	}
	if err := writeRandom(filepath.Join(snap, "big.bin"), size); err != nil {
		return err
	}
	small := make([]byte, 4096)
	_, _ = rand.Read(small)
	if err := os.WriteFile(filepath.Join(snap, "small.bin"), small, 0o644); err != nil {
		return err
	}
	// What creating a file costs here, apart from Warden: on this machine's ext4 it has been seen
	// to vary twentyfold between directories and over time, and a stage creates three.
	fmt.Printf("filesystem under %s: %s, a file create+unlink %s\n\n", dir, fsType(dir), createCost(base))

	// 1. Large file: cp versus Stage, alternating, on the same filesystem (-rounds 0 skips it).
	if rounds > 0 {
		if err := largeFiles(share, staging, state, snap, base, size, rounds); err != nil {
			return err
		}
	}

	// 2. Startup and idle memory of the real binary, then small files over HTTP.
	policy := filepath.Join(base, "policy.yaml")
	if err := os.WriteFile(policy, []byte("owners:\n  - {serviceAccount: apps/bench, environment: prod}\ndatasets:\n  - {id: big, snapshot: prod/big/rw, readers: [serviceAccount:apps/bench, user:bench]}\n"), 0o644); err != nil {
		return err
	}
	var starts []time.Duration
	var proc *exec.Cmd
	var addr string
	for i := 0; i < 5; i++ {
		if proc != nil {
			stop(proc)
		}
		addr = freeAddr()
		start := time.Now()
		proc = exec.Command(bin, "--listen", addr, "--owner", "apps/bench", "--environment", "prod",
			"--policy", policy, "--snapshot-root", share, "--staging-root", staging, "--state-dir", state,
			"--audit-log", filepath.Join(base, "audit.log"), "--quota-bytes", "0", "--sync-copies="+strconv.FormatBool(syncCopies))
		proc.Stderr = io.Discard
		if err := proc.Start(); err != nil {
			return err
		}
		if err := waitReady("http://" + addr + "/readyz"); err != nil {
			stop(proc)
			return err
		}
		starts = append(starts, time.Since(start))
	}
	defer stop(proc)
	time.Sleep(3 * time.Second)
	rss, err := rssKiB(proc.Process.Pid)
	if err != nil {
		return err
	}
	fmt.Printf("sidecar start to ready: median %s (runs %v)\n", median(starts).Round(100*time.Microsecond), rounded(starts))
	fmt.Printf("sidecar idle RSS: %.1f MiB (%s)\n\n", float64(rss)/1024, rssParts(proc.Process.Pid))

	// A pool of connections as an app's HTTP client keeps one (requests' default pool is 10):
	// without a bound, every latency spike of a loaded machine opens more, and the RSS after
	// the run measured the generator's peak concurrency (~25 KiB of buffers and stack each)
	// instead of what the sidecar keeps per copy. Requests beyond it wait for a connection,
	// which their latency includes.
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxConnsPerHost: 16, MaxIdleConnsPerHost: 16}}
	body := []byte(`{"path":"small.bin","ttl_seconds":3600}`)
	send := func() error {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/datasets/big/stage", bytes.NewReader(body))
		req.Header.Set("X-Warden-Caller", "bench")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusCreated {
			return fmt.Errorf("%s: %s", resp.Status, b)
		}
		return nil
	}
	if err := send(); err != nil {
		return err
	}
	fmt.Printf("4 KiB stages over HTTP at %d req/s for %s (open loop, --sync-copies=%v):\n", rate, duration, syncCopies)
	cpu0 := openloop.ProcessCPU(proc.Process.Pid)
	res := openloop.Run(rate, duration, 2*time.Second, send)
	if cpu := openloop.ProcessCPU(proc.Process.Pid) - cpu0; cpu > 0 {
		// The CPU covers the warm-up's stages too, so it is divided by every stage sent.
		fmt.Printf("sidecar CPU during the run: %s (%s per stage, over the %d sent with the warm-up's)\n", cpu.Round(time.Millisecond), (cpu / time.Duration(max(res.Sent, 1))).Round(time.Microsecond), res.Sent)
	}
	fmt.Print(res.Report())
	after, _ := rssKiB(proc.Process.Pid)
	fmt.Printf("sidecar RSS after the run (%d copies staged): %.1f MiB (%s)\n", len(res.Latencies)+1, float64(after)/1024, rssParts(proc.Process.Pid))
	// RSS depends on how many connections the run needed at its peak (each holds buffers and a
	// goroutine until its idle timeout), which a loaded machine drives up; the Go metrics tell
	// that apart from state that grows with the copies.
	metrics := func() string {
		return goMetrics("http://"+addr+"/metrics", "go_goroutines", "go_memstats_heap_inuse_bytes", "go_memstats_stack_inuse_bytes", "go_memstats_next_gc_bytes")
	}
	fmt.Printf("  %s\n", metrics())
	// Once quiet, the sidecar gives the burst's memory back (cmd/sidecar/app/trim.go): what
	// stays is what the copies really hold.
	time.Sleep(settle)
	settled, _ := rssKiB(proc.Process.Pid)
	fmt.Printf("sidecar RSS %s after the run: %.1f MiB (%s)\n  %s\n", settle, float64(settled)/1024, rssParts(proc.Process.Pid), metrics())
	if res.Failures > 0 {
		return fmt.Errorf("%d requests failed, first: %v", res.Failures, res.FirstErr)
	}
	return nil
}

// largeFiles reports the paired cp-versus-Stage runs of the large file and the hash floor.
func largeFiles(share, staging, state, snap, base string, size int64, rounds int) error {
	s, err := stage.New(stage.Config{SnapshotRoot: share, StagingRoot: staging, StateDir: state,
		Owner: "apps/bench", Environment: "prod", Workload: contract.WorkloadApp}, nil, nil)
	if err != nil {
		return err
	}
	cps, stages, err := largeFile(s, snap, base, rounds)
	if err != nil {
		return err
	}
	ratios := make([]float64, len(cps))
	for i := range cps {
		ratios[i] = float64(stages[i]) / float64(cps[i])
	}
	cp, st := median(cps), median(stages)
	fmt.Printf("stage %d MiB: cp (+fsync) median %s, Warden stage (copy + sha256 + fsync + metadata) median %s, ratio of medians %.2fx, median of paired ratios %.2fx\n",
		size>>20, cp.Round(time.Millisecond), st.Round(time.Millisecond), float64(st)/float64(cp), medianFloat(ratios))
	fmt.Printf("  runs: cp %v, stage %v, paired ratios %v\n", rounded(cps), rounded(stages), roundedFloats(ratios))
	if d, err := hashAlone(filepath.Join(snap, "big.bin")); err == nil {
		fmt.Printf("  sha256 of the file alone (page cache, one core; the floor when hashing is the bottleneck): %s\n", d.Round(time.Millisecond))
	}
	fmt.Println()
	return nil
}

// largeFile times cp (+ fsync) and Stage of the large file in pairs, one right after the other
// and in alternating order, so that a pair sees the same machine: on a shared machine the load
// changes from one second to the next, and a ratio of two separate medians would mostly measure
// that.
func largeFile(s *stage.Stager, snap, base string, rounds int) (cps, stages []time.Duration, err error) {
	cpOnce := func() (time.Duration, error) {
		dst := filepath.Join(base, "cp-copy.bin")
		defer os.Remove(dst)
		start := time.Now()
		if out, err := exec.Command("cp", filepath.Join(snap, "big.bin"), dst).CombinedOutput(); err != nil {
			return 0, fmt.Errorf("cp: %v: %s", err, out)
		}
		syncFile(dst)
		return time.Since(start), nil
	}
	stageOnce := func() (time.Duration, error) {
		start := time.Now()
		m, err := s.Stage(context.Background(), stage.Request{Dataset: "big", SnapshotDir: "prod/big/rw", Path: "big.bin", Caller: "bench", CallerDir: "user=bench"})
		if err != nil {
			return 0, err
		}
		d := time.Since(start)
		_, err = s.Delete(m.Name, m.CallerDir)
		return d, err
	}
	for i := 0; i < rounds; i++ {
		first, second := cpOnce, stageOnce
		if i%2 == 1 {
			first, second = stageOnce, cpOnce
		}
		a, err := first()
		if err != nil {
			return nil, nil, err
		}
		b, err := second()
		if err != nil {
			return nil, nil, err
		}
		if i%2 == 1 {
			a, b = b, a
		}
		cps, stages = append(cps, a), append(stages, b)
	}
	return cps, stages, nil
}

func hashAlone(path string) (time.Duration, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	start := time.Now()
	_, err = io.Copy(sha256.New(), f)
	return time.Since(start), err
}

func medianFloat(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func roundedFloats(v []float64) []string {
	out := make([]string, len(v))
	for i, x := range v {
		out[i] = fmt.Sprintf("%.2f", x)
	}
	return out
}

func writeRandom(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 8<<20)
	_, _ = rand.Read(buf)
	for written := int64(0); written < size; {
		n := min(int64(len(buf)), size-written)
		if _, err := f.Write(buf[:n]); err != nil {
			return err
		}
		written += n
	}
	return f.Sync()
}

// syncFile makes cp's copy durable, as Stage's is, so both pay for the same guarantee.
func syncFile(p string) {
	if f, err := os.OpenFile(p, os.O_RDWR, 0); err == nil {
		_ = f.Sync()
		f.Close()
	}
}

// createCost is the median of 500 creates and unlinks of an empty file in a new folder of dir.
func createCost(dir string) time.Duration {
	d, err := os.MkdirTemp(dir, "create-")
	if err != nil {
		return 0
	}
	defer os.RemoveAll(d)
	var ds []time.Duration
	for i := range 500 {
		p := filepath.Join(d, strconv.Itoa(i))
		start := time.Now()
		f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644)
		if err != nil {
			return 0
		}
		f.Close()
		_ = os.Remove(p)
		ds = append(ds, time.Since(start))
	}
	return median(ds).Round(time.Microsecond)
}

func fsType(dir string) string {
	out, err := exec.Command("df", "-T", dir).Output()
	if err != nil {
		return "unknown"
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	f := strings.Fields(lines[len(lines)-1])
	if len(f) > 1 {
		return f[1]
	}
	return "unknown"
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func rounded(d []time.Duration) []string {
	out := make([]string, len(d))
	for i, x := range d {
		out[i] = x.Round(100 * time.Microsecond).String()
	}
	return out
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitReady(url string) error {
	deadline := time.Now().Add(10 * time.Second)
	c := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		if resp, err := c.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(200 * time.Microsecond)
	}
	return fmt.Errorf("%s not ready", url)
}

func stop(c *exec.Cmd) {
	_ = c.Process.Signal(syscall.SIGTERM)
	_ = c.Wait()
}

// goMetrics reads a few gauges from the sidecar's /metrics, in MiB when they are bytes.
func goMetrics(url string, names ...string) string {
	resp, err := http.Get(url)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) != 2 || !slices.Contains(names, f[0]) {
			continue
		}
		var v float64
		_, _ = fmt.Sscanf(f[1], "%g", &v)
		if strings.HasSuffix(f[0], "_bytes") {
			out = append(out, fmt.Sprintf("%s %.1f MiB", strings.TrimPrefix(f[0], "go_memstats_"), v/(1<<20)))
		} else {
			out = append(out, fmt.Sprintf("%s %.0f", f[0], v))
		}
	}
	return strings.Join(out, ", ")
}

func rssKiB(pid int) (int, error) {
	f, err := statusKiB(pid, "VmRSS")
	return f["VmRSS"], err
}

// rssParts is the RSS split into anonymous memory (heap, stacks: what the process made) and
// file pages (the binary's code and data as far as it ran: what it touched).
func rssParts(pid int) string {
	f, err := statusKiB(pid, "RssAnon", "RssFile")
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("anonymous %.1f MiB, file-backed %.1f MiB", float64(f["RssAnon"])/1024, float64(f["RssFile"])/1024)
}

// statusKiB reads kB fields of /proc/PID/status.
func statusKiB(pid int, names ...string) (map[string]int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok || !slices.Contains(names, k) {
			continue
		}
		var kib int
		if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d", &kib); err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		out[k] = kib
	}
	if len(out) != len(names) {
		return nil, fmt.Errorf("pid %d: want %v in /proc/PID/status, got %v", pid, names, out)
	}
	return out, nil
}

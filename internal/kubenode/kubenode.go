// Package kubenode runs one real Kubernetes node on this machine: Debian's containerd, runc and
// CNI plugins, and a kubelet (built by `hack/tools/build.sh kubelet`) registered with a given
// API server. Offline: images are imported from tarballs, never pulled; the pod sandbox image
// is a static Go pause built here.
//
// The node takes over parts of the host, and puts them back in Stop: a bridge (Bridge, NodeIP)
// that is the node's address and the pods' gateway, a few kernel sysctls the kubelet rewrites,
// the kubelet's iptables chains, and the mounts below its work directory. One node per machine:
// a lock file serialises users, and a node left behind by a killed process is cleaned up by the
// next New.
//
// There is no scheduler, controller-manager, DNS or kube-proxy: callers set spec.nodeName,
// create ServiceAccounts themselves, and pods reach the host at NodeIP.
package kubenode

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"github.com/warden-dev/warden/internal/ociimage"
)

const (
	// NodeName is the Node object the kubelet registers.
	NodeName = "warden-node"
	// Bridge is the CNI bridge; NodeIP (on it) is the node's address, where pods reach the host.
	// The kubelet refuses a loopback node IP, hence a bridge of our own.
	Bridge    = "warden0"
	NodeIP    = "10.87.0.1"
	PodSubnet = "10.87.0.0/24"
	// PauseImage is the sandbox image, built and imported by Start.
	PauseImage = "localhost/warden-node/pause:1"

	cniBinDir = "/usr/lib/cni" // Debian's containernetworking-plugins
	lockFile  = "/run/warden-kubenode.lock"
	// packages is what Debian calls the binaries Requirements looks for.
	packages = "containerd runc containernetworking-plugins iptables"
)

// kernelTunables are the sysctls the kubelet sets (protectKernelDefaults is false), restored by Stop.
var kernelTunables = []string{"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops", "kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes"}

// Requirements says what this machine lacks to run a node (nil when nothing).
func Requirements() error {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, b := range []string{"containerd", "containerd-shim-runc-v2", "ctr", "runc", "ip", "iptables", "ip6tables",
		cniBinDir + "/bridge", cniBinDir + "/host-local", cniBinDir + "/loopback"} {
		if _, err := exec.LookPath(b); err != nil {
			missing = append(missing, b)
		}
	}
	if _, err := exec.LookPath("go"); err != nil {
		missing = append(missing, "go (builds the pause image)")
	}
	if len(missing) > 0 {
		return fmt.Errorf("a real node needs %s (as root: apt-get install %s)", strings.Join(missing, ", "), packages)
	}
	return nil
}

// KubeletBinary is $WARDEN_KUBELET, else where `hack/tools/build.sh kubelet` caches it.
func KubeletBinary() (string, error) {
	bin := os.Getenv("WARDEN_KUBELET")
	if bin == "" {
		out, err := exec.Command(filepath.Join(repoRoot(), "hack/tools/build.sh"), "path-kubelet").Output()
		if err != nil {
			return "", fmt.Errorf("locating the kubelet: %w", err)
		}
		bin = strings.TrimSpace(string(out))
	}
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("kubelet not found at %s: run `make kubelet` (builds it from the Go module proxy, cached in ~/.cache/warden)", bin)
	}
	return bin, nil
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Options of a node.
type Options struct {
	// Kubelet binary (default: KubeletBinary()).
	Kubelet string
	// Logf receives progress lines (default: discarded).
	Logf func(format string, args ...any)
	// Keep leaves the work directory (logs, kubelet and containerd state) after Stop.
	Keep bool
}

// Node is one node on this machine. Dir holds its configuration, state and logs:
// containerd.log, kubelet.log, pod-logs/.
type Node struct {
	Dir        string
	opts       Options
	lock       *os.File
	sock       string
	kube       kubernetes.Interface
	containerd *exec.Cmd
	kubelet    *exec.Cmd
	stopOnce   sync.Once
}

// New takes the machine's node lock, cleans up after a node whose process died, and creates
// the bridge, so that servers can listen on NodeIP before the node starts (the API server and
// webhook the kubelet will use, a broker or Vault the pods will call).
func New(o Options) (n *Node, err error) {
	if err := Requirements(); err != nil {
		return nil, err
	}
	if o.Kubelet == "" {
		if o.Kubelet, err = KubeletBinary(); err != nil {
			return nil, err
		}
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	lock, err := os.OpenFile(lockFile, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("another node is running on this machine (%s is locked): %w", lockFile, err)
	}
	n = &Node{opts: o, lock: lock}
	defer func() {
		if err != nil {
			n.Stop()
			n = nil
		}
	}()
	// The lock file names the last node's directory until its Stop finishes: if it is still
	// there, that node's process died and left containers, mounts and the bridge behind.
	if prev, _ := os.ReadFile(lockFile); len(prev) > 0 {
		o.Logf("kubenode: cleaning up after an earlier node in %s", prev)
		(&Node{Dir: string(prev), opts: o, sock: filepath.Join(string(prev), "containerd.sock")}).recover()
	}
	if run("ip", "link", "show", Bridge) == nil {
		// Not ours to delete: no node's lock names it.
		return n, fmt.Errorf("bridge %s exists but no node owns it; remove it (ip link del %s) or change kubenode.Bridge", Bridge, Bridge)
	}
	if n.Dir, err = os.MkdirTemp("", "warden-node-"); err != nil {
		return n, err
	}
	n.sock = filepath.Join(n.Dir, "containerd.sock")
	if err := replaceFile(lock, n.Dir); err != nil {
		return n, err
	}
	var saved strings.Builder
	for _, s := range kernelTunables {
		if b, err := os.ReadFile("/proc/sys/" + s); err == nil {
			fmt.Fprintf(&saved, "%s %s\n", s, strings.TrimSpace(string(b)))
		}
	}
	if err := os.WriteFile(filepath.Join(n.Dir, "sysctls"), []byte(saved.String()), 0o600); err != nil {
		return n, err
	}
	for _, args := range [][]string{
		{"link", "add", Bridge, "type", "bridge"},
		{"addr", "add", NodeIP + "/24", "dev", Bridge},
		{"link", "set", Bridge, "up"},
	} {
		if err := run("ip", args...); err != nil {
			return n, err
		}
	}
	return n, nil
}

func replaceFile(f *os.File, content string) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.WriteAt([]byte(content), 0)
	return err
}

// Start runs containerd and the kubelet, which registers with the API server of kubeconfig
// (a user in system:nodes, and system:masters where the API server has no Node authorizer),
// and waits until the node is Ready.
func (n *Node) Start(ctx context.Context, kubeconfig []byte) error {
	for name, content := range n.configFiles(kubeconfig) {
		p := filepath.Join(n.Dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			return err
		}
	}
	if err := n.startContainerd(ctx); err != nil {
		return err
	}
	return n.startKubelet(ctx, kubeconfig)
}

// startContainerd runs containerd and imports the pause image, built from source (no registry).
func (n *Node) startContainerd(ctx context.Context) error {
	d := n.Dir
	var err error
	if n.containerd, err = n.start("containerd", "containerd", "--config", filepath.Join(d, "containerd.toml")); err != nil {
		return err
	}
	if err := poll(ctx, 30*time.Second, func() bool { _, err := n.Ctr("version"); return err == nil }); err != nil {
		return fmt.Errorf("containerd did not come up (see %s/containerd.log): %w", d, err)
	}
	pause := filepath.Join(d, "images/pause")
	if err := BuildStatic("github.com/warden-dev/warden/internal/kubenode/pause", pause); err != nil {
		return err
	}
	spec := ociimage.Binary(PauseImage, pause)
	spec.User = "65535:65535" // what the upstream pause image runs as
	if _, err := ociimage.Write(pause+".tar", spec); err != nil {
		return err
	}
	return n.Import(pause + ".tar")
}

// startKubelet runs the kubelet and waits until its node is Ready.
func (n *Node) startKubelet(ctx context.Context, kubeconfig []byte) error {
	d := n.Dir
	var err error
	if n.kubelet, err = n.start("kubelet", n.opts.Kubelet, "--config", filepath.Join(d, "kubelet.yaml"),
		"--kubeconfig", filepath.Join(d, "kubelet.kubeconfig"), "--hostname-override", NodeName,
		"--node-ip", NodeIP, "--root-dir", n.KubeletDir(), "-v", "2"); err != nil {
		return err
	}
	rc, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
	if err != nil {
		return err
	}
	if n.kube, err = kubernetes.NewForConfig(rc); err != nil {
		return err
	}
	err = poll(ctx, 2*time.Minute, func() bool {
		node, err := n.kube.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
		if err != nil {
			return false
		}
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady {
				return c.Status == corev1.ConditionTrue
			}
		}
		return false
	})
	if err != nil {
		return fmt.Errorf("node %s not Ready (see %s/kubelet.log): %w", NodeName, d, err)
	}
	return nil
}

// KubeletDir is the kubelet's root directory (pods' volumes are below pods/UID/volumes).
func (n *Node) KubeletDir() string { return filepath.Join(n.Dir, "kubelet") }

// BuildStatic builds a main package of this module as a static binary.
func BuildStatic(pkg, out string) error {
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Dir = repoRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
	}
	return nil
}

// Import loads image tarballs (docker-archive or OCI) into the kubelet's containerd namespace.
// Pods use them with imagePullPolicy Never, or IfNotPresent with a tag other than latest.
func (n *Node) Import(tarballs ...string) error {
	for _, t := range tarballs {
		if out, err := n.Ctr("images", "import", t); err != nil {
			return fmt.Errorf("importing %s: %w: %s", t, err, out)
		}
	}
	return nil
}

// Ctr runs ctr against this node's containerd, in the kubelet's namespace.
func (n *Node) Ctr(args ...string) ([]byte, error) {
	return exec.Command("ctr", append([]string{"--address", n.sock, "-n", "k8s.io"}, args...)...).CombinedOutput()
}

// Stop deletes the node's pods (so the kubelet tears their sandboxes and networks down), stops
// the kubelet and containerd, and gives the host back: bridge, iptables chains, sysctls, mounts.
// Only the first call does anything.
func (n *Node) Stop() {
	n.stopOnce.Do(n.stop)
}

func (n *Node) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if n.kube != nil && alive(n.kubelet) {
		sel := metav1.ListOptions{FieldSelector: "spec.nodeName=" + NodeName}
		// Without an API server (stopped first by a caller) there is nothing to wait for: the
		// kubelet's containers are killed below all the same.
		if pods, err := n.kube.CoreV1().Pods("").List(ctx, sel); err == nil {
			for _, p := range pods.Items {
				_ = n.kube.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](1)})
			}
			_ = poll(ctx, 45*time.Second, func() bool {
				l, err := n.kube.CoreV1().Pods("").List(ctx, sel)
				return err == nil && len(l.Items) == 0
			})
		}
	}
	stop(n.kubelet, 10*time.Second)
	n.killTasks()
	stop(n.containerd, 15*time.Second)
	if n.Dir != "" {
		n.restoreHost()
	}
	if n.lock != nil {
		_ = replaceFile(n.lock, "")
		n.lock.Close() // releases the flock
	}
}

// recover cleans up after a node whose process died: its containerd is started again on the
// same state (it reconnects to the shims still running the containers) to kill them.
func (n *Node) recover() {
	if _, err := os.Stat(filepath.Join(n.Dir, "containerd.toml")); err == nil {
		if c, err := n.start("containerd-recover", "containerd", "--config", filepath.Join(n.Dir, "containerd.toml")); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			_ = poll(ctx, 30*time.Second, func() bool { _, err := n.Ctr("version"); return err == nil })
			cancel()
			n.killTasks()
			stop(c, 15*time.Second)
		}
	}
	n.restoreHost()
}

// killTasks kills and removes every container of the node's containerd.
func (n *Node) killTasks() {
	if _, err := n.Ctr("version"); err != nil {
		return
	}
	list := func(what string) []string {
		out, _ := n.Ctr(what, "ls", "-q")
		return strings.Fields(string(out))
	}
	// Sandboxes the kubelet could not stop (it is gone) keep their network namespace and the
	// runtime's CNI cache entries: note them to remove once the containers are.
	var netns, results []string
	for _, c := range list("containers") {
		info, _ := n.Ctr("containers", "info", c)
		netns = append(netns, netnsPath.FindAllString(string(info), -1)...)
		m, _ := filepath.Glob("/var/lib/cni/results/*-" + c + "-*")
		results = append(results, m...)
	}
	for _, t := range list("tasks") {
		_, _ = n.Ctr("tasks", "kill", "-s", "SIGKILL", t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, t := range list("tasks") {
		_ = poll(ctx, 10*time.Second, func() bool { _, err := n.Ctr("tasks", "delete", "-f", t); return err == nil })
	}
	for _, c := range list("containers") {
		_, _ = n.Ctr("containers", "delete", c)
	}
	for _, ns := range netns {
		// ip netns del unmounts and removes the pinning file; the veth's host end goes with it.
		_ = run("ip", "netns", "del", filepath.Base(ns))
	}
	for _, f := range results {
		_ = os.Remove(f)
	}
}

// netnsPath is how containerd's CRI names a pod's network namespace in its sandbox's spec.
var netnsPath = regexp.MustCompile(`/var/run/netns/cni-[0-9a-f-]+`)

// restoreHost undoes what New and the kubelet changed on the host, then removes Dir.
func (n *Node) restoreHost() {
	_ = run("ip", "link", "del", Bridge)
	for _, ipt := range []string{"iptables", "ip6tables"} { // the chains the kubelet creates
		_ = run(ipt, "-D", "INPUT", "-j", "KUBE-FIREWALL")
		_ = run(ipt, "-D", "OUTPUT", "-j", "KUBE-FIREWALL")
		for _, t := range []string{"filter", "nat", "mangle"} {
			for _, c := range []string{"KUBE-FIREWALL", "KUBE-KUBELET-CANARY", "KUBE-IPTABLES-HINT"} {
				_ = run(ipt, "-t", t, "-F", c)
				_ = run(ipt, "-t", t, "-X", c)
			}
		}
	}
	if saved, err := os.ReadFile(filepath.Join(n.Dir, "sysctls")); err == nil {
		for _, l := range strings.Split(string(saved), "\n") {
			if k, v, ok := strings.Cut(l, " "); ok {
				_ = os.WriteFile("/proc/sys/"+k, []byte(v), 0o644)
			}
		}
	}
	// CNI results the runtime caches outside our directory, for our network only.
	if m, _ := filepath.Glob("/var/lib/cni/results/warden-node-*"); len(m) > 0 {
		for _, f := range m {
			_ = os.Remove(f)
		}
	}
	// Mounts below Dir (pod volumes, overlay snapshots, shm), deepest first.
	unmountBelow(n.Dir)
	if n.opts.Keep {
		n.opts.Logf("kubenode: kept %s", n.Dir)
		return
	}
	if err := os.RemoveAll(n.Dir); err != nil {
		n.opts.Logf("kubenode: removing %s: %v", n.Dir, err)
	}
}

func unmountBelow(dir string) {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return
	}
	var mps []string
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 1 && strings.HasPrefix(f[1], dir+"/") {
			mps = append(mps, f[1])
		}
	}
	// Longest first: children before parents.
	sort.Slice(mps, func(i, j int) bool { return len(mps[i]) > len(mps[j]) })
	for _, m := range mps {
		_ = syscall.Unmount(m, syscall.MNT_DETACH)
	}
}

func (n *Node) start(name, bin string, args ...string) (*exec.Cmd, error) {
	f, err := os.Create(filepath.Join(n.Dir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	// If this process dies, so do the daemons; the next New cleans up the rest.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	go func() { _ = cmd.Wait(); f.Close() }()
	n.opts.Logf("kubenode: started %s (pid %d), log %s", name, cmd.Process.Pid, f.Name())
	return cmd, nil
}

func alive(c *exec.Cmd) bool {
	return c != nil && c.Process != nil && c.Process.Signal(syscall.Signal(0)) == nil
}

func stop(c *exec.Cmd, grace time.Duration) {
	if !alive(c) {
		return
	}
	_ = c.Process.Signal(syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for alive(c) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if alive(c) {
		_ = c.Process.Kill()
	}
}

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

func poll(ctx context.Context, timeout time.Duration, ok func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for !ok() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil
}

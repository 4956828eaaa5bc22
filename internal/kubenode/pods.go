package kubenode

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Logs is what a container of pod wrote to stdout and stderr, across its restarts (oldest
// first), read from the kubelet's log files: no API server round trip to the kubelet needed.
func (n *Node) Logs(pod *corev1.Pod, container string) (string, error) {
	lines, err := n.LogLines(pod, container)
	var out strings.Builder
	for _, l := range lines {
		out.WriteString(l.Text)
		out.WriteByte('\n')
	}
	return out.String(), err
}

// LogLine is one line a container wrote; Time is when the runtime received it (nanoseconds).
type LogLine struct {
	Time   time.Time
	Stream string
	Text   string
}

// LogLines is Logs line by line, with the runtime's timestamps.
func (n *Node) LogLines(pod *corev1.Pod, container string) ([]LogLine, error) {
	dir := filepath.Join(n.Dir, "pod-logs", fmt.Sprintf("%s_%s_%s", pod.Namespace, pod.Name, pod.UID), container)
	files, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no logs in %s", dir)
	}
	restart := func(f string) int {
		i, _ := strconv.Atoi(strings.TrimSuffix(filepath.Base(f), ".log"))
		return i
	}
	sort.Slice(files, func(i, j int) bool { return restart(files[i]) < restart(files[j]) })
	var lines []LogLine
	for _, f := range files {
		if lines, err = readCRILog(f, lines); err != nil {
			return lines, err
		}
	}
	return lines, nil
}

// readCRILog appends the lines of a CRI log file ("TIME STREAM P|F TEXT" per line; P is a
// partial line continued by the next).
func readCRILog(file string, lines []LogLine) ([]LogLine, error) {
	f, err := os.Open(file)
	if err != nil {
		return lines, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	partial := false
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), " ", 4)
		if len(parts) < 3 {
			continue
		}
		text := ""
		if len(parts) == 4 {
			text = parts[3]
		}
		if partial && len(lines) > 0 {
			lines[len(lines)-1].Text += text
		} else {
			ts, _ := time.Parse(time.RFC3339Nano, parts[0])
			lines = append(lines, LogLine{Time: ts, Stream: parts[1], Text: text})
		}
		partial = parts[2] == "P"
	}
	return lines, sc.Err()
}

// ContainerID is the runtime's ID of a container of pod (init containers included), as
// reported in its status; "" if it has none yet.
func ContainerID(pod *corev1.Pod, container string) string {
	for _, list := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
		for _, s := range list {
			if s.Name == container {
				_, id, _ := strings.Cut(s.ContainerID, "://")
				return id
			}
		}
	}
	return ""
}

// Kill sends SIGKILL to a container's processes, as the OOM killer or a crash would end them.
func (n *Node) Kill(containerID string) error {
	if out, err := n.Ctr("tasks", "kill", "-s", "SIGKILL", "--all", containerID); err != nil {
		return fmt.Errorf("killing %s: %w: %s", containerID, err, out)
	}
	return nil
}

// PID is the host PID of a running container's main process.
func (n *Node) PID(containerID string) (int, error) {
	out, err := n.Ctr("tasks", "ls")
	if err != nil {
		return 0, fmt.Errorf("ctr tasks ls: %w: %s", err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) >= 3 && f[0] == containerID && f[2] == "RUNNING" {
			return strconv.Atoi(f[1])
		}
	}
	return 0, fmt.Errorf("container %s is not running", containerID)
}

// Memory is a process's resident set and its container's memory cgroup usage, in bytes.
type Memory struct {
	RSS         int64 // VmRSS of the process
	CgroupUsage int64 // memory.usage_in_bytes (v1) or memory.current (v2): RSS + page cache + kernel
	CgroupRSS   int64 // the cgroup's anonymous memory: memory.stat rss (v1) or anon (v2)
}

// MemoryOf reads a container's memory from the host.
func MemoryOf(pid int) (Memory, error) {
	var m Memory
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return m, err
	}
	for _, l := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			m.RSS = kb << 10
		}
	}
	cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return m, err
	}
	for _, l := range strings.Split(string(cg), "\n") {
		f := strings.SplitN(l, ":", 3)
		if len(f) != 3 {
			continue
		}
		var usageFile, statFile, statKey string
		switch {
		case strings.Contains(","+f[1]+",", ",memory,"): // v1
			usageFile = filepath.Join("/sys/fs/cgroup/memory", f[2], "memory.usage_in_bytes")
			statFile, statKey = filepath.Join("/sys/fs/cgroup/memory", f[2], "memory.stat"), "rss"
		case f[0] == "0" && f[1] == "" && !fileExists("/sys/fs/cgroup/memory"): // v2 only
			usageFile = filepath.Join("/sys/fs/cgroup", f[2], "memory.current")
			statFile, statKey = filepath.Join("/sys/fs/cgroup", f[2], "memory.stat"), "anon"
		default:
			continue
		}
		b, err := os.ReadFile(usageFile)
		if err != nil {
			return m, err
		}
		m.CgroupUsage, _ = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if b, err = os.ReadFile(statFile); err == nil {
			for _, sl := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(sl, statKey+" "); ok {
					m.CgroupRSS, _ = strconv.ParseInt(v, 10, 64)
				}
			}
		}
		return m, nil
	}
	return m, fmt.Errorf("no memory cgroup for pid %d", pid)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// Containers lists the IDs of the runtime's containers of a pod, its sandbox included.
func (n *Node) Containers(namespace, pod string) ([]string, error) {
	filter := fmt.Sprintf(`labels."io.kubernetes.pod.namespace"==%s,labels."io.kubernetes.pod.name"==%s`, namespace, pod)
	out, err := n.Ctr("containers", "ls", "-q", filter)
	if err != nil {
		return nil, fmt.Errorf("ctr containers ls: %w: %s", err, out)
	}
	return strings.Fields(string(out)), nil
}

// VolumeDir is where the kubelet keeps a pod's volume of the given plugin on the host, e.g.
// VolumeDir(uid, "kubernetes.io~empty-dir", "warden-state").
func (n *Node) VolumeDir(podUID, plugin, volume string) string {
	return filepath.Join(n.KubeletDir(), "pods", podUID, "volumes", plugin, volume)
}

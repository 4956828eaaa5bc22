package kubenode

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Logs reads the kubelet's CRI log files: restarts in order (10 after 9), partial lines joined,
// the runtime's timestamps kept.
func TestLogs(t *testing.T) {
	n := &Node{Dir: t.TempDir()}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "p", UID: "u1"}}
	dir := filepath.Join(n.Dir, "pod-logs", "apps_p_u1", "app")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"9.log":  "2026-11-26T09:00:00.000000001Z stdout F first\n",
		"10.log": "2026-11-26T09:00:01.5Z stdout P sec\n2026-11-26T09:00:01.6Z stdout F ond\n2026-11-26T09:00:02Z stderr F \n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	lines, err := n.LogLines(pod, "app")
	if err != nil {
		t.Fatal(err)
	}
	want := []LogLine{
		{time.Date(2026, 11, 26, 9, 0, 0, 1, time.UTC), "stdout", "first"},
		{time.Date(2026, 11, 26, 9, 0, 1, 5e8, time.UTC), "stdout", "second"},
		{time.Date(2026, 11, 26, 9, 0, 2, 0, time.UTC), "stderr", ""},
	}
	if len(lines) != len(want) {
		t.Fatalf("lines %+v", lines)
	}
	for i := range want {
		if !lines[i].Time.Equal(want[i].Time) || lines[i].Stream != want[i].Stream || lines[i].Text != want[i].Text {
			t.Errorf("line %d: %+v, want %+v", i, lines[i], want[i])
		}
	}
	if s, _ := n.Logs(pod, "app"); s != "first\nsecond\n\n" {
		t.Errorf("Logs %q", s)
	}
	if _, err := n.Logs(pod, "sidecar"); err == nil {
		t.Error("no error for a container without logs")
	}
}

func TestContainerID(t *testing.T) {
	pod := &corev1.Pod{Status: corev1.PodStatus{
		InitContainerStatuses: []corev1.ContainerStatus{{Name: "warden-sidecar", ContainerID: "containerd://abc"}},
		ContainerStatuses:     []corev1.ContainerStatus{{Name: "app", ContainerID: "containerd://def"}},
	}}
	if ContainerID(pod, "warden-sidecar") != "abc" || ContainerID(pod, "app") != "def" || ContainerID(pod, "x") != "" {
		t.Error("ContainerID")
	}
}

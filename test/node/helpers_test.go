//go:build node

package node

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/warden-dev/warden/internal/kubenode"
	"github.com/warden-dev/warden/pkg/contract"
)

// podTimeout bounds every wait for the kubelet; it is a deadline for failure, not a measurement.
const podTimeout = 3 * time.Minute

// appPod is a pod whose one container runs nodeapp with args, as user appUID, on the node.
func appPod(namespace, name, sa string, args ...string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: corev1.PodSpec{
			NodeName:                      kubenode.NodeName, // no scheduler
			ServiceAccountName:            sa,
			AutomountServiceAccountToken:  ptr.To(false),
			TerminationGracePeriodSeconds: ptr.To[int64](10),
			Containers: []corev1.Container{{
				Name:            "app",
				Image:           appImage,
				ImagePullPolicy: corev1.PullNever,
				Args:            args,
				Ports:           []corev1.ContainerPort{{Name: "control", ContainerPort: 8080}},
				SecurityContext: &corev1.SecurityContext{
					RunAsUser:                ptr.To[int64](appUID),
					RunAsGroup:               ptr.To[int64](appUID),
					RunAsNonRoot:             ptr.To(true),
					ReadOnlyRootFilesystem:   ptr.To(true),
					AllowPrivilegeEscalation: ptr.To(false),
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
			}},
		},
	}
}

// create creates a pod and deletes it when the test ends.
func create(t testing.TB, p *corev1.Pod) *corev1.Pod {
	t.Helper()
	got, err := kube.CoreV1().Pods(p.Namespace).Create(context.Background(), p, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating pod %s/%s: %v", p.Namespace, p.Name, err)
	}
	t.Cleanup(func() { deletePod(t, got) })
	return got
}

// deletePod deletes a pod and waits until the kubelet has stopped it and it is gone.
func deletePod(t testing.TB, p *corev1.Pod) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), podTimeout)
	defer cancel()
	err := kube.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return
	}
	if err != nil {
		t.Errorf("deleting pod %s/%s: %v", p.Namespace, p.Name, err)
		return
	}
	for {
		_, err := kube.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return
		}
		select {
		case <-ctx.Done():
			t.Errorf("pod %s/%s still there after deletion: %v", p.Namespace, p.Name, err)
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// waitPod polls a pod until cond holds; on timeout it fails with the pod's status, its events
// and its containers' logs.
func waitPod(t testing.TB, p *corev1.Pod, what string, cond func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), podTimeout)
	defer cancel()
	var cur *corev1.Pod
	for {
		var err error
		cur, err = kube.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
		if err == nil && cond(cur) {
			return cur
		}
		select {
		case <-ctx.Done():
			t.Fatalf("pod %s/%s: %s: timed out\n%s", p.Namespace, p.Name, what, describe(cur))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// describe is a pod's status, events and logs, for failure messages.
func describe(p *corev1.Pod) string {
	if p == nil {
		return "(no pod)"
	}
	var b strings.Builder
	st, _ := json.MarshalIndent(p.Status, "", "  ")
	fmt.Fprintf(&b, "status: %s\n", st)
	ev, _ := kube.CoreV1().Events(p.Namespace).List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=" + p.Name})
	if ev != nil {
		for _, e := range ev.Items {
			fmt.Fprintf(&b, "event %s: %s\n", e.Reason, e.Message)
		}
	}
	for _, c := range append(append([]corev1.Container{}, p.Spec.InitContainers...), p.Spec.Containers...) {
		logs, err := node.Logs(p, c.Name)
		fmt.Fprintf(&b, "--- logs of %s (%v):\n%s", c.Name, err, logs)
	}
	return b.String()
}

// running waits until the pod runs with every container started and ready.
func running(t testing.TB, p *corev1.Pod) *corev1.Pod {
	t.Helper()
	return waitPod(t, p, "Running and Ready", func(p *corev1.Pod) bool {
		if p.Status.Phase != corev1.PodRunning {
			return false
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady {
				return c.Status == corev1.ConditionTrue
			}
		}
		return false
	})
}

func status(p *corev1.Pod, container string) *corev1.ContainerStatus {
	for _, list := range [][]corev1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
		for i := range list {
			if list[i].Name == container {
				return &list[i]
			}
		}
	}
	return nil
}

// appEvents are the JSON lines nodeapp printed, by event name.
func appEvents(t testing.TB, p *corev1.Pod, event string) []map[string]any {
	t.Helper()
	logs, _ := node.Logs(p, "app") // none yet: nothing printed yet
	var out []map[string]any
	for _, l := range strings.Split(logs, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["event"] == event {
			out = append(out, m)
		}
	}
	return out
}

// waitAppEvent waits until nodeapp has printed an event (log files are written asynchronously).
func waitAppEvent(t testing.TB, p *corev1.Pod, event string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(podTimeout)
	for {
		if ev := appEvents(t, p, event); len(ev) > 0 {
			return ev[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod %s/%s: nodeapp never printed %q\n%s", p.Namespace, p.Name, event, describe(p))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Op and Result mirror nodeapp's.
type Op struct {
	Op      string            `json:"op"`
	Method  string            `json:"method,omitempty"`
	Path    string            `json:"path"`
	Body    string            `json:"body,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
}

type Result struct {
	Status  int      `json:"status,omitempty"`
	Body    string   `json:"body,omitempty"`
	Data    string   `json:"data,omitempty"`
	Entries []string `json:"entries,omitempty"`
	Error   string   `json:"error,omitempty"`
	Errno   int      `json:"errno,omitempty"`
}

// in asks the nodeapp of a running pod (at its pod IP) to do op inside the pod.
func in(t testing.TB, p *corev1.Pod, op Op) Result {
	t.Helper()
	body, _ := json.Marshal(op)
	url := "http://" + p.Status.PodIP + ":8080/do"
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Post(url, "application/json", bytes.NewReader(body))
		if err == nil {
			defer resp.Body.Close()
			var r Result
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("nodeapp %s: %s", url, resp.Status)
			}
			if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
				t.Fatal(err)
			}
			return r
		}
		// The pod is Ready once nodeapp runs; its listener may come a moment later.
		if time.Now().After(deadline) {
			t.Fatalf("nodeapp at %s: %v", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// call is an HTTP call from the app container to the sidecar, as the given caller ("" for the
// owner itself).
func call(t testing.TB, p *corev1.Pod, method, path, caller string, body any) Result {
	t.Helper()
	op := Op{Op: "http", Method: method, Path: path}
	if body != nil {
		b, _ := json.Marshal(body)
		op.Body = string(b)
	}
	if caller != "" {
		op.Headers = map[string]string{"X-Warden-Caller": caller}
	}
	r := in(t, p, op)
	if r.Error != "" {
		t.Fatalf("%s %s from the app: %s", method, path, r.Error)
	}
	return r
}

// staged is the sidecar's answer to a stage request.
type staged struct {
	Path      string    `json:"path"`
	Name      string    `json:"name"`
	ExpiresAt time.Time `json:"expires_at"`
	Size      int64     `json:"size"`
	SHA256    string    `json:"sha256"`
}

// stage stages a file from inside the pod and fails unless it was created.
func stage(t testing.TB, p *corev1.Pod, caller, dataset, path string, ttl int) staged {
	t.Helper()
	r := call(t, p, "POST", "/v1/datasets/"+dataset+"/stage", caller, map[string]any{"path": path, "ttl_seconds": ttl})
	if r.Status != http.StatusCreated {
		t.Fatalf("staging %s/%s for %q: %d %s", dataset, path, caller, r.Status, r.Body)
	}
	var s staged
	if err := json.Unmarshal([]byte(r.Body), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// injected is the Warden status the webhook wrote on a pod.
func injected(t testing.TB, p *corev1.Pod) contract.Status {
	t.Helper()
	var s contract.Status
	if err := json.Unmarshal([]byte(p.Annotations[contract.AnnotationStatus]), &s); err != nil {
		t.Fatalf("pod %s/%s has no Warden status: %v", p.Namespace, p.Name, err)
	}
	return s
}

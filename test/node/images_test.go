//go:build node

package node

import (
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/warden-dev/warden/internal/kubenode"
	"github.com/warden-dev/warden/internal/ociimage"
)

// The webhook image as `make images` writes it runs on the node: FROM scratch, as a non-root
// user the kubelet can verify (runAsNonRoot with no runAsUser: the image's USER decides).
func TestWebhookImage(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "warden-webhook")
	if err := kubenode.BuildStatic("github.com/warden-dev/warden/cmd/webhook", bin); err != nil {
		t.Fatal(err)
	}
	const ref = "ghcr.io/warden-dev/warden-webhook:node-test"
	r, err := ociimage.Write(filepath.Join(dir, "webhook.tar"), ociimage.Binary(ref, bin).WithCARoots(ociimage.CARoots))
	if err != nil {
		t.Fatal(err)
	}
	if err := node.Import(r.Path); err != nil {
		t.Fatal(err)
	}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "webhook-image", Namespace: "plain"},
		Spec: corev1.PodSpec{
			NodeName:                     kubenode.NodeName,
			ServiceAccountName:           "svc-bench",
			AutomountServiceAccountToken: ptr.To(false),
			RestartPolicy:                corev1.RestartPolicyNever,
			SecurityContext:              &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true)},
			Containers: []corev1.Container{{
				Name: "webhook", Image: ref, ImagePullPolicy: corev1.PullNever, Args: []string{"--version"},
				SecurityContext: &corev1.SecurityContext{ReadOnlyRootFilesystem: ptr.To(true), AllowPrivilegeEscalation: ptr.To(false),
					Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
			}},
		},
	}
	p = waitPod(t, create(t, p), "finished", func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
	})
	if p.Status.Phase != corev1.PodSucceeded {
		t.Fatalf("webhook --version in its image: %s\n%s", p.Status.Phase, describe(p))
	}
	if logs, err := node.Logs(p, "webhook"); err != nil || strings.TrimSpace(logs) == "" {
		t.Errorf("webhook --version printed %q (%v)", logs, err)
	}
}

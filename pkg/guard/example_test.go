package guard_test

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/warden-dev/warden/pkg/guard"
)

// The mutating webhook judges a pod as its author wrote it before injecting anything: a pod
// that brings its own warden-sidecar (a forgery of Warden's parts) is refused with a reason.
func ExampleRules_Fresh() {
	rules := &guard.Rules{
		Snapshot: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "warden-snapshots", ReadOnly: true}},
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "job", Namespace: "apps"},
		Spec: corev1.PodSpec{ServiceAccountName: "etl", Containers: []corev1.Container{
			{Name: "app", Image: "python:3.13"},
			{Name: "warden-sidecar", Image: "attacker.example/sidecar"},
		}},
	}
	if v := rules.Fresh("apps", pod, "prod/apps.etl"); v != nil {
		fmt.Println(v.Reason)
	}
	pod.Spec.Containers = pod.Spec.Containers[:1]
	fmt.Println(rules.Fresh("apps", pod, "prod/apps.etl") == nil)
	// Output:
	// forged-injection
	// true
}

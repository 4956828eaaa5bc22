package guard

import (
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"

	"github.com/warden-dev/warden/pkg/api"
)

// Update judges a change to a running pod by the old object against the new one, never by what
// this version would inject today: a pod injected by an older Warden keeps receiving updates
// (labels, finalizers, deletion) for its whole life. Warden's parts never change; new ephemeral
// containers are judged like any other container.
func (r *Rules) Update(old, pod *corev1.Pod) *Violation {
	oldStatus, wasInjected := old.Annotations[api.AnnotationStatus]
	newStatus, isInjected := pod.Annotations[api.AnnotationStatus]
	if wasInjected != isInjected || oldStatus != newStatus {
		return Deny(ReasonImmutable, "the update changes the %s annotation, which Warden writes once when it injects a pod; leave it as it is (to re-inject, delete the pod and create it again)", api.AnnotationStatus)
	}
	var inj *Injection
	if wasInjected {
		var st api.Status
		if err := decodeStatus(oldStatus, &st); err == nil {
			inj = &Injection{Status: st, SubPath: api.AppSubPath(st.Environment, st.Owner, st.Workload)}
		}
		oldSide, newSide := sidecarOf(&old.Spec), sidecarOf(&pod.Spec)
		if !equality.Semantic.DeepEqual(oldSide, newSide) {
			return Deny(ReasonImmutable, "the update changes the %s container; Warden's sidecar is fixed for the pod's life (image, resources and all): leave it as it is", api.SidecarName)
		}
		for _, name := range st.Volumes {
			if !equality.Semantic.DeepEqual(volumeOf(&old.Spec, name), volumeOf(&pod.Spec, name)) {
				return Deny(ReasonImmutable, "the update changes Warden's volume %q; leave it as it is", name)
			}
		}
	}
	for _, nc := range Containers(&pod.Spec) {
		if !nc.Ephemeral || slices.ContainsFunc(old.Spec.EphemeralContainers, func(e corev1.EphemeralContainer) bool { return e.Name == nc.C.Name }) {
			continue
		}
		if v := r.Container(nc, inj); v != nil {
			return v
		}
	}
	return nil
}

func sidecarOf(spec *corev1.PodSpec) []corev1.Container {
	var out []corev1.Container
	for _, nc := range Containers(spec) {
		if nc.C.Name == api.SidecarName {
			out = append(out, *nc.C)
		}
	}
	return out
}

func volumeOf(spec *corev1.PodSpec, name string) *corev1.Volume {
	for i := range spec.Volumes {
		if spec.Volumes[i].Name == name {
			return &spec.Volumes[i]
		}
	}
	return nil
}

// Connect judges `kubectl exec`, `attach` (and `cp`, which execs) into a container: never the
// sidecar, whose memory, token and state are what the pod's isolation protects.
func Connect(container string) *Violation {
	if container == api.SidecarName || strings.EqualFold(strings.TrimSpace(container), api.SidecarName) {
		return Deny(ReasonSidecarAccess, "exec and attach into the %s container are refused: it holds the pod's Warden credentials; exec into an app container instead", api.SidecarName)
	}
	return nil
}

package guard

import (
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"

	"github.com/warden-dev/warden/pkg/contract"
)

// Update judges a change to a pod by the old object against the new one, never by what this
// version would inject today: a pod injected by an older Warden keeps receiving updates (labels,
// finalizers, deletion) for its whole life. It is the one rule for every way a pod changes: the
// pod itself, and its status, ephemeralcontainers and resize subresources.
//
// Warden's parts are found by name, not through the status annotation: the status annotation,
// every container named warden-sidecar and every volume named warden-* must be exactly the old
// object's. (Reading them through the old status would let one request remove the status and
// the next change the sidecar unseen.) New ephemeral containers are judged like any other
// container.
func (r *Rules) Update(old, pod *corev1.Pod) *Violation {
	oldStatus, wasInjected := old.Annotations[contract.AnnotationStatus]
	newStatus, isInjected := pod.Annotations[contract.AnnotationStatus]
	if wasInjected != isInjected || oldStatus != newStatus {
		return Deny(ReasonImmutable, "the update changes the %s annotation, which Warden writes once when it injects a pod; leave it as it is (to re-inject, delete the pod and create it again)", contract.AnnotationStatus)
	}
	if !equality.Semantic.DeepEqual(sidecarOf(&old.Spec), sidecarOf(&pod.Spec)) {
		return Deny(ReasonImmutable, "the update changes the %s container; Warden's sidecar is fixed for the pod's life (image, resources and all): leave it as it is", contract.SidecarName)
	}
	oldVols, newVols := reservedVolumes(&old.Spec), reservedVolumes(&pod.Spec)
	if !equality.Semantic.DeepEqual(oldVols, newVols) {
		return Deny(ReasonImmutable, "the update changes Warden's volumes (%s); leave them as they are", volumeNames(oldVols, newVols))
	}
	var inj *Injection
	if wasInjected {
		var st contract.Status
		if err := decodeStatus(oldStatus, &st); err == nil {
			inj = &Injection{Status: st, SubPath: contract.AppSubPath(st.Environment, st.Owner, st.Workload)}
		}
	}
	for nc := range Containers(&pod.Spec) {
		if !nc.Ephemeral || slices.ContainsFunc(old.Spec.EphemeralContainers, func(e corev1.EphemeralContainer) bool { return e.Name == nc.C.Name }) {
			continue
		}
		if v := r.Container(nc, inj); v != nil {
			return v
		}
	}
	return nil
}

// Binding judges a pods/binding request: the API server copies the binding's annotations onto
// the pod, bypassing the pod's own update path, so a binding may not write Warden's.
func Binding(annotations map[string]string) *Violation {
	if _, ok := annotations[contract.AnnotationStatus]; ok {
		return Deny(ReasonImmutable, "the binding sets the %s annotation, which Warden writes once when it injects a pod; bind without it", contract.AnnotationStatus)
	}
	return nil
}

func sidecarOf(spec *corev1.PodSpec) []corev1.Container {
	var out []corev1.Container
	for nc := range Containers(spec) {
		if nc.C.Name == contract.SidecarName {
			out = append(out, *nc.C)
		}
	}
	return out
}

// reservedVolumes lists the volumes in Warden's reserved names, in the pod's order.
func reservedVolumes(spec *corev1.PodSpec) []corev1.Volume {
	var out []corev1.Volume
	for _, v := range spec.Volumes {
		if strings.HasPrefix(v.Name, contract.ReservedNamePrefix) {
			out = append(out, v)
		}
	}
	return out
}

// volumeNames names the volumes of either list, for messages.
func volumeNames(a, b []corev1.Volume) string {
	var names []string
	for _, v := range append(slices.Clone(a), b...) {
		if !slices.Contains(names, v.Name) {
			names = append(names, v.Name)
		}
	}
	return strings.Join(names, ", ")
}

// Connect judges `kubectl exec`, `attach` (and `cp`, which execs) into a container: never the
// sidecar, whose memory, token and state are what the pod's isolation protects.
func Connect(container string) *Violation {
	if container == contract.SidecarName || strings.EqualFold(strings.TrimSpace(container), contract.SidecarName) {
		return Deny(ReasonSidecarAccess, "exec and attach into the %s container are refused: it holds the pod's Warden credentials; exec into an app container instead", contract.SidecarName)
	}
	return nil
}

// CertificateRequester judges who asks Warden's signer (contract.SignerName) for a pod certificate:
// only the kubelet of the node the request names (user system:node:NODE in group system:nodes;
// the API server's NodeRestriction then checks that the pod runs there). Anyone else who may
// create PodCertificateRequests (a controller, an operator, a tenant granted it) could ask for
// a certificate for a key of their own and speak to the broker as the sidecar.
func CertificateRequester(signer, node, user string, groups []string) *Violation {
	if signer != contract.SignerName {
		return nil
	}
	if node != "" && user == "system:node:"+node && slices.Contains(groups, "system:nodes") {
		return nil
	}
	return Deny(ReasonCertificateRequester, "only the kubelet of node %q may request %s certificates (the sidecar's identity); %q may not", node, contract.SignerName, user)
}

// Package guard is the one definition of what a pod in an opted-in namespace may look like. It
// is applied everywhere a pod is judged: by the mutating webhook on the pod it is about to
// create (its own additions included), by the validating webhook on the final pod and on every
// update, exec and attach, and by the broker before it answers a sidecar. The invariant:
//
//   - Warden's parts (the warden.dev/status annotation, the warden-sidecar container and the
//     warden-* volumes) are exactly what some Warden replica injected: sealed with a key only
//     the replicas hold (seal.go), and never changed afterwards (update.go).
//   - Only the sidecar mounts the snapshot share, its state and its token. Every other container
//     (init containers before the sidecar and ephemeral containers included) mounts the staging
//     volume read-only with the owner's subPath, or not at all.
//   - No other volume reaches the share, the staging area or the node (volumes.go), and no other
//     volume projects a token Warden's broker or Vault would accept.
//   - Nothing in the pod can reach into the sidecar (shared process namespace, host namespaces,
//     privileged containers, capabilities that cross containers) or redirect the hosts it talks
//     to (hostAliases, DNS).
package guard

import (
	"fmt"
	"iter"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/warden-dev/warden/pkg/contract"
)

// Reasons a pod is refused; they label the denial metric and name the rule in every message.
const (
	ReasonNotInjected          = "not-injected"
	ReasonForgedInjection      = "forged-injection"
	ReasonReservedName         = "reserved-name"
	ReasonForbiddenMount       = "forbidden-mount"
	ReasonForbiddenVolume      = "forbidden-volume"
	ReasonTokenAudience        = "token-audience"
	ReasonShareProcess         = "share-process-namespace"
	ReasonHostNamespace        = "host-namespace"
	ReasonPrivileged           = "privileged"
	ReasonCapability           = "dangerous-capability"
	ReasonRedirectedHost       = "redirected-host"
	ReasonEphemeral            = "ephemeral-container"
	ReasonImmutable            = "immutable-injection"
	ReasonSidecarAccess        = "sidecar-access"
	ReasonCertificateRequester = "certificate-requester"
)

// Violation is a refused pod: a stable reason and a message for the person who applied it,
// saying what is wrong and what to do.
type Violation struct {
	Reason  string
	Message string
}

func (v *Violation) Error() string { return v.Reason + ": " + v.Message }

// Deny builds a Violation.
func Deny(reason, format string, args ...any) *Violation {
	return &Violation{Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// Rules are the installation's facts the invariant depends on.
type Rules struct {
	// Snapshot is the dataset share's volume source (what Warden mounts into the sidecar).
	Snapshot corev1.VolumeSource
	// HostPathAllow lists host path prefixes that user volumes may mount. Empty (the default)
	// refuses every hostPath volume: the node's filesystem holds every pod's tokens.
	HostPathAllow []string
	// InlineVolumeAllow lists in-tree network volume types (such as "nfs") that user volumes may
	// use. They reach storage Warden cannot see behind, so none is allowed by default.
	InlineVolumeAllow []string
	// GuardedHosts are the broker's and Vault's host names: nothing in a pod may redirect them.
	GuardedHosts []string
	// Audiences are the token audiences that only Warden's own token volume may project.
	Audiences []string
	// Keys seal and verify injections.
	Keys *Keyring
	// Shares tells the storage behind a share claim (nil: unknown, so inline CSI volumes are
	// refused when the share is a claim).
	Shares Shares
}

// Injection is Warden's part of a verified pod.
type Injection struct {
	Status  contract.Status
	Sidecar *corev1.Container
	// SubPath is the part of the staging volume app containers may mount.
	SubPath string
}

// Check judges a pod as it will run, its seal verified. namespace is the request's (a pod being
// created may not carry one yet).
func (r *Rules) Check(namespace string, pod *corev1.Pod) (*Injection, *Violation) {
	return r.check(namespace, pod, nil, nil)
}

// CheckEncoded is Check with the encodings of Warden's parts that the pod's decoder holds (see
// Encodings): the same judgement, without encoding the parts again.
func (r *Rules) CheckEncoded(namespace string, pod *corev1.Pod, enc Encodings) (*Injection, *Violation) {
	return r.check(namespace, pod, nil, enc)
}

// CheckOwn judges a pod the caller has just injected itself, with status st (the mutating
// webhook, before it answers): the seal is its own, so only the rest is judged.
func (r *Rules) CheckOwn(namespace string, pod *corev1.Pod, st contract.Status) (*Injection, *Violation) {
	return r.check(namespace, pod, &st, nil)
}

func (r *Rules) check(namespace string, pod *corev1.Pod, own *contract.Status, enc Encodings) (*Injection, *Violation) {
	spec := &pod.Spec
	if v := r.podLevel(spec); v != nil {
		return nil, v
	}
	inj, v := r.injection(namespace, pod, own, enc)
	if v != nil {
		return nil, v
	}
	if v := r.parts(namespace, spec, inj); v != nil {
		return nil, v
	}
	return inj, nil
}

// Fresh judges a pod Warden has not injected yet, as its author wrote it, against the injection
// Warden is about to add (subPath is the app mount's): the rules of Check, with the author's own
// field paths in the messages. A container or volume named like Warden's is refused here.
func (r *Rules) Fresh(namespace string, pod *corev1.Pod, subPath string) *Violation {
	if v := r.podLevel(&pod.Spec); v != nil {
		return v
	}
	return r.parts(namespace, &pod.Spec, &Injection{SubPath: subPath})
}

// parts judges every container and volume that is not Warden's.
func (r *Rules) parts(namespace string, spec *corev1.PodSpec, inj *Injection) *Violation {
	for nc := range Containers(spec) {
		if nc.C == inj.Sidecar {
			if v := isolation(nc); v != nil {
				return v
			}
			continue
		}
		if v := r.Container(nc, inj); v != nil {
			return v
		}
	}
	var share *Backing
	backing := func() Backing {
		if share == nil {
			b := r.backing(namespace)
			share = &b
		}
		return *share
	}
	for i := range spec.Volumes {
		vol := &spec.Volumes[i]
		if isWardenVolume(vol.Name, inj) {
			continue
		}
		if strings.HasPrefix(vol.Name, contract.ReservedNamePrefix) {
			return Deny(ReasonReservedName, "spec.volumes[%d] is named %q; volume names starting with %q are reserved for Warden, rename the volume (when copying an injected pod, drop every warden-* container and volume and the %s annotation)", i, vol.Name, contract.ReservedNamePrefix, contract.AnnotationStatus)
		}
		if v := r.volume(i, vol, backing); v != nil {
			return v
		}
	}
	return nil
}

func isWardenVolume(name string, inj *Injection) bool {
	for _, n := range inj.Status.Volumes {
		if n == name {
			return true
		}
	}
	return false
}

// injection finds and verifies Warden's parts.
func (r *Rules) injection(namespace string, pod *corev1.Pod, own *contract.Status, enc Encodings) (*Injection, *Violation) {
	raw, ok := pod.Annotations[contract.AnnotationStatus]
	if !ok {
		return nil, Deny(ReasonNotInjected, "the pod has no %s annotation, so Warden did not inject it; pods in namespaces labelled %s=%s are injected when they are created (check that Warden's MutatingWebhookConfiguration is installed)", contract.AnnotationStatus, contract.LabelInject, contract.LabelInjectEnabled)
	}
	forged := func(format string, args ...any) *Violation {
		return Deny(ReasonForgedInjection, "the pod carries %s but %s; Warden writes that annotation itself: remove it and every warden-* container and volume, and let Warden inject the pod", contract.AnnotationStatus, fmt.Sprintf(format, args...))
	}
	inj := &Injection{}
	find := func(st contract.Status) (found, error) {
		f, err := findParts(&pod.Spec, st)
		inj.Sidecar = f.sidecar.C
		return f, err
	}
	var err error
	if own == nil {
		inj.Status, err = r.Keys.Verify(raw, func(st contract.Status) ([32]byte, error) {
			f, err := find(st)
			if err != nil {
				return [32]byte{}, err
			}
			return f.digest(&pod.Spec, enc)
		})
	} else {
		inj.Status = *own
		_, err = find(inj.Status)
	}
	if err != nil {
		return nil, forged("%v", err)
	}
	st := &inj.Status
	sa := ServiceAccount(pod)
	if st.Owner != namespace+"/"+sa {
		return nil, forged("it names owner %q while the pod runs as %s/%s", st.Owner, namespace, sa)
	}
	if st.Sidecar != contract.SidecarName {
		return nil, forged("it names sidecar %q", st.Sidecar)
	}
	inj.SubPath = contract.AppSubPath(st.Environment, st.Owner, st.Workload)
	return inj, nil
}

// ServiceAccount is the service account a pod runs as: "default" when the spec names none, as
// the API server's admission sets it.
func ServiceAccount(pod *corev1.Pod) string {
	if pod.Spec.ServiceAccountName == "" {
		return "default"
	}
	return pod.Spec.ServiceAccountName
}

// Container judges one container that is not the sidecar: isolation, names, mounts and, for an
// ephemeral container, its target. inj nil means the pod has no Warden parts.
func (r *Rules) Container(nc Named, inj *Injection) *Violation {
	if v := isolation(nc); v != nil {
		return v
	}
	c := nc.C
	if c.Name == contract.SidecarName {
		return Deny(ReasonForgedInjection, "%s is named like Warden's sidecar; Warden adds its sidecar itself: remove the container (when copying an injected pod, drop every warden-* container and volume and the %s annotation)", nc.Field(), contract.AnnotationStatus)
	}
	if strings.HasPrefix(c.Name, contract.ReservedNamePrefix) {
		return Deny(ReasonReservedName, "%s has a name starting with %q, which is reserved for Warden; rename the container", nc.Field(), contract.ReservedNamePrefix)
	}
	if nc.Ephemeral && nc.Target == contract.SidecarName {
		return Deny(ReasonEphemeral, "%s targets the Warden sidecar, which would expose its memory and credentials; target an app container instead", nc.Field())
	}
	own := ""
	if inj != nil {
		own = inj.SubPath
	}
	for _, m := range c.VolumeMounts {
		if !strings.HasPrefix(m.Name, contract.ReservedNamePrefix) || appMount(m, own) {
			continue
		}
		if m.Name == contract.VolumeStaging && own != "" {
			return Deny(ReasonForbiddenMount, "%s mounts %s other than read-only with subPath %q (no subPathExpr); app containers see only their owner's staged copies, which Warden mounts at %s itself: remove the mount", nc.Field(), m.Name, own, contract.DataDir)
		}
		return Deny(ReasonForbiddenMount, "%s mounts volume %q, which only the Warden sidecar may use; remove the mount and ask the sidecar at http://127.0.0.1:$%s instead", nc.Field(), m.Name, contract.EnvPort)
	}
	for _, d := range c.VolumeDevices {
		if strings.HasPrefix(d.Name, contract.ReservedNamePrefix) {
			return Deny(ReasonForbiddenMount, "%s uses volume %q as a block device, which only the Warden sidecar may use; remove it from volumeDevices", nc.Field(), d.Name)
		}
	}
	return nil
}

// appMount is the one way an app container may mount a Warden volume.
func appMount(m corev1.VolumeMount, subPath string) bool {
	return subPath != "" && m.Name == contract.VolumeStaging && m.ReadOnly && m.SubPath == subPath && m.SubPathExpr == ""
}

// Named is a container of any kind with where it is in the pod.
type Named struct {
	C         *corev1.Container
	Init      bool
	Ephemeral bool
	// Target is an ephemeral container's targetContainerName.
	Target string
	index  int
}

// Field is the container's field path, for messages.
func (n Named) Field() string {
	list := "containers"
	switch {
	case n.Init:
		list = "initContainers"
	case n.Ephemeral:
		list = "ephemeralContainers"
	}
	return fmt.Sprintf("spec.%s[%d] (%q)", list, n.index, n.C.Name)
}

// Containers yields init, regular and ephemeral containers (an iterator: every admission walks
// them several times, and a list each time was an allocation each).
func Containers(spec *corev1.PodSpec) iter.Seq[Named] {
	return func(yield func(Named) bool) {
		for i := range spec.InitContainers {
			if !yield(Named{C: &spec.InitContainers[i], Init: true, index: i}) {
				return
			}
		}
		for i := range spec.Containers {
			if !yield(Named{C: &spec.Containers[i], index: i}) {
				return
			}
		}
		for i := range spec.EphemeralContainers {
			ec := &spec.EphemeralContainers[i]
			c := (*corev1.Container)(&ec.EphemeralContainerCommon)
			if !yield(Named{C: c, Ephemeral: true, Target: ec.TargetContainerName, index: i}) {
				return
			}
		}
	}
}

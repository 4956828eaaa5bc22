package mutate

import (
	"fmt"
	"path"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/warden-dev/warden/pkg/api"
)

// Reasons a pod is denied; they label the denial metric and start every denial message.
const (
	ReasonNoPolicy           = "no-policy"
	ReasonUnknownOwner       = "unknown-owner"
	ReasonInvalidLabel       = "invalid-label"
	ReasonShareProcess       = "share-process-namespace"
	ReasonHostNamespace      = "host-namespace"
	ReasonPrivileged         = "privileged"
	ReasonCapability         = "dangerous-capability"
	ReasonForbiddenVolume    = "forbidden-volume"
	ReasonReservedName       = "reserved-name"
	ReasonMountConflict      = "mount-conflict"
	ReasonEnvConflict        = "env-conflict"
	ReasonPortConflict       = "port-conflict"
	ReasonForgedInjection    = "forged-injection"
	ReasonEphemeralToSidecar = "ephemeral-container"
)

// denial is a refused pod: a stable reason for metrics and a message for the person who applied
// it, saying what is wrong and what to do.
type denial struct {
	reason  string
	message string
}

func (d *denial) Error() string { return d.reason + ": " + d.message }

func deny(reason, format string, args ...any) *denial {
	return &denial{reason: reason, message: fmt.Sprintf(format, args...)}
}

// dangerousCaps are capabilities that let a container escape its own view of the pod: reach
// another container's processes or mounts, or rewrite the pod's shared loopback network that
// the sidecar listens on.
var dangerousCaps = []corev1.Capability{
	"ALL", "SYS_ADMIN", "SYS_PTRACE", "SYS_MODULE", "SYS_RAWIO", "NET_ADMIN", "DAC_READ_SEARCH", "BPF", "PERFMON",
}

// allContainers lists init, regular and ephemeral containers with the field path of each.
func allContainers(spec *corev1.PodSpec) (out []namedContainer) {
	for i := range spec.InitContainers {
		out = append(out, namedContainer{fmt.Sprintf("spec.initContainers[%d]", i), &spec.InitContainers[i], true})
	}
	for i := range spec.Containers {
		out = append(out, namedContainer{fmt.Sprintf("spec.containers[%d]", i), &spec.Containers[i], false})
	}
	for i := range spec.EphemeralContainers {
		ec := corev1.Container(spec.EphemeralContainers[i].EphemeralContainerCommon)
		out = append(out, namedContainer{fmt.Sprintf("spec.ephemeralContainers[%d]", i), &ec, false})
	}
	return out
}

type namedContainer struct {
	field string
	c     *corev1.Container
	init  bool
}

// checkIsolation refuses pods whose containers could reach into the sidecar: a shared process
// namespace, host namespaces, privileged containers and capabilities that cross container
// boundaries. It applies to every container, the sidecar included, so a forged sidecar cannot
// carry privileges either.
func checkIsolation(spec *corev1.PodSpec) *denial {
	if spec.ShareProcessNamespace != nil && *spec.ShareProcessNamespace {
		return deny(ReasonShareProcess, "spec.shareProcessNamespace is true, which would let app containers read the Warden sidecar's memory and credentials through /proc; remove it (Warden pods cannot share a process namespace)")
	}
	for field, on := range map[string]bool{"hostPID": spec.HostPID, "hostIPC": spec.HostIPC, "hostNetwork": spec.HostNetwork} {
		if on {
			return deny(ReasonHostNamespace, "spec.%s is true; a Warden pod must not share the node's namespaces (with hostNetwork the sidecar's loopback port would be open to every process on the node). Remove spec.%s", field, field)
		}
	}
	for _, nc := range allContainers(spec) {
		sc := nc.c.SecurityContext
		if sc == nil {
			continue
		}
		if sc.Privileged != nil && *sc.Privileged {
			return deny(ReasonPrivileged, "%s (%q) is privileged, which would give it the node's devices and the sidecar's mounts; remove securityContext.privileged", nc.field, nc.c.Name)
		}
		if sc.Capabilities != nil {
			for _, cp := range sc.Capabilities.Add {
				if slices.Contains(dangerousCaps, corev1.Capability(strings.TrimPrefix(strings.ToUpper(string(cp)), "CAP_"))) {
					return deny(ReasonCapability, "%s (%q) adds capability %s, which can cross into the Warden sidecar; remove it from securityContext.capabilities.add", nc.field, nc.c.Name, cp)
				}
			}
		}
	}
	return nil
}

// checkVolumes refuses volumes that point at the snapshot share or the staging root, which only
// the sidecar may mount (skip lists the injected volumes of an already injected pod).
func (c *Config) checkVolumes(spec *corev1.PodSpec, skip func(name string) bool) *denial {
	for i, v := range spec.Volumes {
		if skip != nil && skip(v.Name) {
			continue
		}
		for _, guarded := range []struct {
			what string
			src  corev1.VolumeSource
		}{{"dataset snapshot share", c.SnapshotVolume}, {"Warden staging root", c.StagingVolume}} {
			if overlaps(v.VolumeSource, guarded.src) {
				return deny(ReasonForbiddenVolume, "spec.volumes[%d] (%q) points at the %s, which only the Warden sidecar may mount; remove the volume and ask the sidecar for files at http://127.0.0.1:$%s/v1/datasets", i, v.Name, guarded.what, api.EnvPort)
			}
		}
	}
	return nil
}

// overlaps reports whether a user volume reaches the storage behind a guarded source. Per-pod
// sources (emptyDir) are never shared, so they never overlap.
func overlaps(v, guarded corev1.VolumeSource) bool {
	switch {
	case guarded.PersistentVolumeClaim != nil:
		return v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == guarded.PersistentVolumeClaim.ClaimName
	case guarded.NFS != nil:
		return v.NFS != nil && strings.EqualFold(v.NFS.Server, guarded.NFS.Server) && pathsOverlap(v.NFS.Path, guarded.NFS.Path)
	case guarded.HostPath != nil:
		return v.HostPath != nil && pathsOverlap(v.HostPath.Path, guarded.HostPath.Path)
	case guarded.CSI != nil:
		return v.CSI != nil && v.CSI.Driver == guarded.CSI.Driver && attrsEqual(v.CSI.VolumeAttributes, guarded.CSI.VolumeAttributes)
	}
	return false
}

// pathsOverlap is true when one path contains the other: mounting a parent reaches the child.
func pathsOverlap(a, b string) bool {
	a, b = path.Clean("/"+a), path.Clean("/"+b)
	return a == b || a == "/" || b == "/" || strings.HasPrefix(a, b+"/") || strings.HasPrefix(b, a+"/")
}

func attrsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// checkReserved refuses a pod that is not yet injected but already uses Warden's names: it is
// either a copy of an injected pod (remove the Warden parts) or an attempt to pass as one.
func (c *Config) checkReserved(spec *corev1.PodSpec) *denial {
	for _, nc := range allContainers(spec) {
		if nc.c.Name == api.SidecarName {
			return deny(ReasonForgedInjection, "%s is named %q like Warden's sidecar, but the pod has no %s annotation; Warden adds its sidecar itself: remove the container (when copying an injected pod, drop every warden-* container and volume too)", nc.field, nc.c.Name, api.AnnotationStatus)
		}
		if strings.HasPrefix(nc.c.Name, api.ReservedNamePrefix) {
			return deny(ReasonReservedName, "%s is named %q; names starting with %q are reserved for Warden, rename the container", nc.field, nc.c.Name, api.ReservedNamePrefix)
		}
	}
	for i, v := range spec.Volumes {
		if strings.HasPrefix(v.Name, api.ReservedNamePrefix) {
			return deny(ReasonReservedName, "spec.volumes[%d] is named %q; volume names starting with %q are reserved for Warden, rename the volume", i, v.Name, api.ReservedNamePrefix)
		}
	}
	return c.checkAppContainers(spec, nil)
}

// checkAppContainers refuses app containers that would collide with what Warden adds: a mount
// at or around the data directory, its environment variables, the sidecar's port. skip names
// containers that already carry Warden's mount (the re-invocation path).
func (c *Config) checkAppContainers(spec *corev1.PodSpec, skip func(*corev1.Container) bool) *denial {
	for _, nc := range allContainers(spec) {
		if nc.c.Name == api.SidecarName || (skip != nil && skip(nc.c)) {
			continue
		}
		for _, m := range nc.c.VolumeMounts {
			if pathsOverlap(m.MountPath, api.DataDir) && m.MountPath != "/" {
				return deny(ReasonMountConflict, "%s (%q) mounts %q at %s, which collides with Warden's data directory %s; move that mount elsewhere", nc.field, nc.c.Name, m.Name, m.MountPath, api.DataDir)
			}
		}
		for _, e := range nc.c.Env {
			if e.Name == api.EnvPort || e.Name == api.EnvDataDir {
				return deny(ReasonEnvConflict, "%s (%q) sets %s, which Warden sets itself; remove it from env", nc.field, nc.c.Name, e.Name)
			}
		}
		for _, p := range nc.c.Ports {
			if p.ContainerPort == c.SidecarPort {
				return deny(ReasonPortConflict, "%s (%q) uses port %d, which the Warden sidecar listens on in every pod; pick another port", nc.field, nc.c.Name, p.ContainerPort)
			}
		}
	}
	return nil
}

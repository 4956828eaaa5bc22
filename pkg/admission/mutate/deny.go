package mutate

import (
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/warden-dev/warden/pkg/contract"
	"github.com/warden-dev/warden/pkg/guard"
)

// Reasons only the mutating webhook gives: who may run here, and what would collide with what
// Warden adds. Isolation reasons are pkg/guard's.
const (
	ReasonNoPolicy      = "no-policy"
	ReasonUnknownOwner  = "unknown-owner"
	ReasonInvalidLabel  = "invalid-label"
	ReasonMountConflict = "mount-conflict"
	ReasonEnvConflict   = "env-conflict"
	ReasonPortConflict  = "port-conflict"
)

// denial is a refused pod (reason and message), shared with pkg/guard.
type denial = guard.Violation

func deny(reason, format string, args ...any) *denial { return guard.Deny(reason, format, args...) }

// checkAppContainers refuses app containers that would collide with what Warden adds: a mount
// at or around the data directory, its environment variables, the sidecar's port. skip names
// containers that already carry Warden's mount (the re-invocation path).
func (c *Config) checkAppContainers(spec *corev1.PodSpec, skip func(*corev1.Container) bool) *denial {
	for nc := range guard.Containers(spec) {
		if nc.C.Name == contract.SidecarName || (skip != nil && skip(nc.C)) {
			continue
		}
		for _, m := range nc.C.VolumeMounts {
			if strings.HasPrefix(m.Name, contract.ReservedNamePrefix) {
				continue // the guard judges mounts of Warden's volumes
			}
			if guard.PathsOverlap(m.MountPath, contract.DataDir) && m.MountPath != "/" {
				return deny(ReasonMountConflict, "%s mounts %q at %s, which collides with Warden's data directory %s; move that mount elsewhere", nc.Field(), m.Name, m.MountPath, contract.DataDir)
			}
		}
		for _, e := range nc.C.Env {
			if e.Name == contract.EnvPort || e.Name == contract.EnvDataDir {
				return deny(ReasonEnvConflict, "%s sets %s, which Warden sets itself; remove it from env", nc.Field(), e.Name)
			}
		}
		for _, p := range nc.C.Ports {
			if p.ContainerPort == c.SidecarPort || (c.SidecarMetricsPort != 0 && p.ContainerPort == c.SidecarMetricsPort) {
				return deny(ReasonPortConflict, "%s uses port %d, which the Warden sidecar listens on in every pod; pick another port", nc.Field(), p.ContainerPort)
			}
		}
	}
	return nil
}

package review

import (
	"bytes"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	sigsjson "sigs.k8s.io/json"

	"github.com/warden-dev/warden/pkg/contract"
)

// container reads what the checks read of one container (target: an ephemeral container's
// targetContainerName). A container named like Warden's sidecar is then decoded in full from its
// bytes: the seal and the update rule judge all of it, and a forged one must be judged as it is.
// It returns a sidecar's guard encoding (see parts.go).
func (s *scanner) container(c *corev1.Container, target *string, ephemeral bool) ([]byte, error) {
	s.ws()
	start := s.i
	var keys seen
	_, err := s.object(func(key []byte) error {
		var err error
		switch string(key) {
		case "name":
			err = keys.read(0, func() error { return s.str(&c.Name) })
		case "env":
			err = keys.read(1, func() error { return s.envNames(&c.Env) })
		case "volumeMounts":
			err = keys.read(2, func() error { return s.volumeMounts(&c.VolumeMounts) })
		case "volumeDevices":
			err = keys.read(3, func() error { c.VolumeDevices = nil; return s.full(&c.VolumeDevices) })
		case "ports":
			err = keys.read(4, func() error { return s.ports(&c.Ports) })
		case "securityContext":
			err = keys.read(5, func() error { return s.securityContext(&c.SecurityContext) })
		case "targetContainerName":
			if ephemeral {
				err = keys.read(6, func() error { return s.str(target) })
			} else {
				err = s.skip()
			}
		default:
			err = s.skip()
		}
		return keyErr(key, err)
	})
	if err != nil || c.Name != contract.SidecarName {
		return nil, err
	}
	raw := s.b[start:s.i]
	if ephemeral {
		// Never Warden's sidecar (the guard looks for it among the others): not remembered.
		var ec corev1.EphemeralContainer
		if err := sigsjson.UnmarshalCaseSensitivePreserveInts(raw, &ec); err != nil {
			return nil, fmt.Errorf("%s: %w", contract.SidecarName, err)
		}
		*c = corev1.Container(ec.EphemeralContainerCommon)
		return nil, nil
	}
	return sidecarContainer(raw, c)
}

func (s *scanner) envNames(p *[]corev1.EnvVar) error {
	return keptEnv.list(s, p, &s.slabs.env, 0, func(_ int, e *corev1.EnvVar) error {
		var keys seen
		_, err := s.object(func(key []byte) error {
			if string(key) != "name" {
				return keyErr(key, s.skip())
			}
			return keyErr(key, keys.read(0, func() error { return s.reservedName(&e.Name) }))
		})
		return err
	})
}

// reservedName reads an env name the checks compare, one in Warden's prefix (contract.EnvPrefix:
// the names the mutating webhook sets itself); any other name is read as "", never compared,
// and not allocated. An app container's env names were a third of the strings a pod read.
func (s *scanner) reservedName(p *string) error {
	return s.strWith(p, func(v []byte) string {
		if !bytes.HasPrefix(v, []byte(contract.EnvPrefix)) {
			return ""
		}
		return s.keep(v)
	})
}

func (s *scanner) volumeMounts(p *[]corev1.VolumeMount) error {
	return keptMounts.list(s, p, &s.slabs.mounts, s.room(1), func(_ int, m *corev1.VolumeMount) error { // Warden's data mount
		var keys seen
		_, err := s.object(func(key []byte) error {
			var err error
			switch string(key) {
			case "name":
				err = keys.read(0, func() error { return s.str(&m.Name) })
			case "readOnly":
				err = keys.read(1, func() error { return s.boolean(&m.ReadOnly) })
			case "mountPath":
				err = keys.read(2, func() error { return s.str(&m.MountPath) })
			case "subPath":
				err = keys.read(3, func() error { return s.str(&m.SubPath) })
			case "subPathExpr":
				err = keys.read(4, func() error { return s.str(&m.SubPathExpr) })
			case "mountPropagation":
				err = keys.read(5, func() error { m.MountPropagation = nil; return s.full(&m.MountPropagation) })
			case "recursiveReadOnly":
				err = keys.read(6, func() error { m.RecursiveReadOnly = nil; return s.full(&m.RecursiveReadOnly) })
			default:
				err = s.skip()
			}
			return keyErr(key, err)
		})
		return err
	})
}

func (s *scanner) ports(p *[]corev1.ContainerPort) error {
	return list(s, p, func(_ int, cp *corev1.ContainerPort) error {
		var keys seen
		_, err := s.object(func(key []byte) error {
			if string(key) != "containerPort" {
				return keyErr(key, s.skip())
			}
			return keyErr(key, keys.read(0, func() error { return s.int32(&cp.ContainerPort) }))
		})
		return err
	})
}

// securityContext reads the fields isolation judges: privileged, added capabilities, procMount.
func (s *scanner) securityContext(p **corev1.SecurityContext) error {
	if s.null() {
		*p = nil
		return nil
	}
	sc := &corev1.SecurityContext{}
	var keys seen
	_, err := s.object(func(key []byte) error {
		var err error
		switch string(key) {
		case "privileged":
			err = keys.read(0, func() error { return s.boolPtr(&sc.Privileged) })
		case "capabilities":
			err = keys.read(1, func() error {
				if s.null() {
					sc.Capabilities = nil
					return nil
				}
				sc.Capabilities = &corev1.Capabilities{}
				var ck seen
				_, err := s.object(func(key []byte) error {
					if string(key) != "add" {
						return keyErr(key, s.skip())
					}
					return keyErr(key, ck.read(0, func() error { return s.full(&sc.Capabilities.Add) }))
				})
				return err
			})
		case "procMount":
			err = keys.read(2, func() error { sc.ProcMount = nil; return s.full(&sc.ProcMount) })
		default:
			err = s.skip()
		}
		return keyErr(key, err)
	})
	*p = sc
	return err
}

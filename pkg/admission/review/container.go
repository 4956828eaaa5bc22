package review

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	sigsjson "sigs.k8s.io/json"

	"github.com/warden-dev/warden/pkg/contract"
)

// container reads what the checks read of one container (target: an ephemeral container's
// targetContainerName). A container named like Warden's sidecar is then decoded in full from its
// bytes: the seal and the update rule judge all of it, and a forged one must be judged as it is.
func (s *scanner) container(c *corev1.Container, target *string, ephemeral bool) error {
	s.ws()
	start := s.i
	var keys seen
	_, err := s.object(func(key []byte) error {
		var err error
		field := func(bit uint, read func() error) {
			if err = keys.once(bit); err == nil {
				err = read()
			}
		}
		switch string(key) {
		case "name":
			field(0, func() error { return s.str(&c.Name) })
		case "env":
			field(1, func() error { return s.envNames(&c.Env) })
		case "volumeMounts":
			field(2, func() error { return s.volumeMounts(&c.VolumeMounts) })
		case "volumeDevices":
			field(3, func() error { c.VolumeDevices = nil; return s.full(&c.VolumeDevices) })
		case "ports":
			field(4, func() error { return s.ports(&c.Ports) })
		case "securityContext":
			field(5, func() error { return s.securityContext(&c.SecurityContext) })
		case "targetContainerName":
			if ephemeral {
				field(6, func() error { return s.str(target) })
			} else {
				err = s.skip()
			}
		default:
			err = s.skip()
		}
		return keyErr(key, err)
	})
	if err != nil || c.Name != contract.SidecarName {
		return err
	}
	raw := s.b[start:s.i]
	if ephemeral {
		var ec corev1.EphemeralContainer
		if err := sigsjson.UnmarshalCaseSensitivePreserveInts(raw, &ec); err != nil {
			return fmt.Errorf("%s: %w", contract.SidecarName, err)
		}
		*c = corev1.Container(ec.EphemeralContainerCommon)
		return nil
	}
	*c = corev1.Container{}
	return sigsjson.UnmarshalCaseSensitivePreserveInts(raw, c)
}

func (s *scanner) envNames(p *[]corev1.EnvVar) error {
	var out []corev1.EnvVar
	ok, err := s.array(func() error {
		var e corev1.EnvVar
		var keys seen
		_, err := s.object(func(key []byte) error {
			if string(key) != "name" {
				return keyErr(key, s.skip())
			}
			if err := keys.once(0); err != nil {
				return keyErr(key, err)
			}
			return keyErr(key, s.str(&e.Name))
		})
		out = append(out, e)
		return err
	})
	if ok && out == nil {
		out = []corev1.EnvVar{}
	}
	*p = out
	return err
}

func (s *scanner) volumeMounts(p *[]corev1.VolumeMount) error {
	var out []corev1.VolumeMount
	ok, err := s.array(func() error {
		var m corev1.VolumeMount
		var keys seen
		_, err := s.object(func(key []byte) error {
			var err error
			field := func(bit uint, read func() error) {
				if err = keys.once(bit); err == nil {
					err = read()
				}
			}
			switch string(key) {
			case "name":
				field(0, func() error { return s.str(&m.Name) })
			case "readOnly":
				field(1, func() error { return s.boolean(&m.ReadOnly) })
			case "mountPath":
				field(2, func() error { return s.str(&m.MountPath) })
			case "subPath":
				field(3, func() error { return s.str(&m.SubPath) })
			case "subPathExpr":
				field(4, func() error { return s.str(&m.SubPathExpr) })
			case "mountPropagation":
				field(5, func() error { m.MountPropagation = nil; return s.full(&m.MountPropagation) })
			case "recursiveReadOnly":
				field(6, func() error { m.RecursiveReadOnly = nil; return s.full(&m.RecursiveReadOnly) })
			default:
				err = s.skip()
			}
			return keyErr(key, err)
		})
		out = append(out, m)
		return err
	})
	if ok && out == nil {
		out = []corev1.VolumeMount{}
	}
	*p = out
	return err
}

func (s *scanner) ports(p *[]corev1.ContainerPort) error {
	var out []corev1.ContainerPort
	ok, err := s.array(func() error {
		var cp corev1.ContainerPort
		var keys seen
		_, err := s.object(func(key []byte) error {
			if string(key) != "containerPort" {
				return keyErr(key, s.skip())
			}
			if err := keys.once(0); err != nil {
				return keyErr(key, err)
			}
			return keyErr(key, s.int32(&cp.ContainerPort))
		})
		out = append(out, cp)
		return err
	})
	if ok && out == nil {
		out = []corev1.ContainerPort{}
	}
	*p = out
	return err
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
		field := func(bit uint, read func() error) {
			if err = keys.once(bit); err == nil {
				err = read()
			}
		}
		switch string(key) {
		case "privileged":
			field(0, func() error { return s.boolPtr(&sc.Privileged) })
		case "capabilities":
			field(1, func() error {
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
					if err := ck.once(0); err != nil {
						return keyErr(key, err)
					}
					return keyErr(key, s.full(&sc.Capabilities.Add))
				})
				return err
			})
		case "procMount":
			field(2, func() error { sc.ProcMount = nil; return s.full(&sc.ProcMount) })
		default:
			err = s.skip()
		}
		return keyErr(key, err)
	})
	*p = sc
	return err
}

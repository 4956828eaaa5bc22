package review

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	sigsjson "sigs.k8s.io/json"
)

// Most of a pod is irrelevant to Warden's checks (resources, probes, commands, env values), and
// decoding it was most of an admission's cost. A pod is read in one pass into exactly what the
// checks (pkg/guard's invariant included) and the mutating webhook's patch read, and the rest is
// skipped (validated, not decoded). Where the guard judges a part field by field, the part is
// decoded in full from its bytes: every volume (the guard knows many sources), the pod-level
// host aliases and DNS config, and any container named like Warden's sidecar (the seal and the
// update rule cover all of it). A container's own fields the guard reads are its name, env
// names, mounts, devices, ports, target and the three isolation fields of its security context.

// Pod is a decoded pod and what the raw object's shape was.
type Pod struct {
	*corev1.Pod
	// HasMetadata and HasSpec are whether the object had them as objects (not absent or null):
	// a patch into /metadata or /spec needs them.
	HasMetadata, HasSpec bool
}

// ReadPod decodes an admitted pod case-sensitively, as the API server does (encoding/json
// would read "serviCeACCount" as serviceAccount), keeping only what a pod's checks read.
func ReadPod(raw []byte) (Pod, error) {
	s := scanner{b: raw}
	p := Pod{Pod: &corev1.Pod{}}
	var keys seen
	_, err := s.object(func(key []byte) error {
		var err error
		switch string(key) {
		case "metadata":
			if err = keys.once(0); err == nil {
				p.HasMetadata, err = s.metadata(&p.ObjectMeta.Name, &p.ObjectMeta.GenerateName, &p.Labels, &p.Annotations)
			}
		case "spec":
			if err = keys.once(1); err == nil {
				p.HasSpec, err = s.podSpec(&p.Spec)
			}
		default:
			err = s.skip()
		}
		return keyErr(key, err)
	})
	if err == nil {
		err = s.end()
	}
	if err != nil {
		return Pod{}, fmt.Errorf("cannot decode pod: %w", err)
	}
	return p, nil
}

// DecodePod is ReadPod's pod.
func DecodePod(raw []byte) (*corev1.Pod, error) {
	p, err := ReadPod(raw)
	return p.Pod, err
}

func keyErr(key []byte, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", key, err)
}

func (s *scanner) metadata(name, generateName *string, labels, annotations *map[string]string) (bool, error) {
	var keys seen
	return s.object(func(key []byte) error {
		var err error
		switch string(key) {
		case "name":
			if err = keys.once(0); err == nil {
				err = s.str(name)
			}
		case "generateName":
			if err = keys.once(1); err == nil {
				err = s.str(generateName)
			}
		case "labels":
			if err = keys.once(2); err == nil {
				err = s.stringMap(labels)
			}
		case "annotations":
			if err = keys.once(3); err == nil {
				err = s.stringMap(annotations)
			}
		default:
			err = s.skip()
		}
		return keyErr(key, err)
	})
}

func (s *scanner) stringMap(p *map[string]string) error {
	if s.null() {
		*p = nil
		return nil
	}
	m := map[string]string{}
	_, err := s.object(func(key []byte) error {
		k := string(key)
		if _, dup := m[k]; dup {
			return keyErr(key, errDuplicate)
		}
		var v string
		if err := s.str(&v); err != nil {
			return keyErr(key, err)
		}
		m[k] = v
		return nil
	})
	*p = m
	return err
}

// full decodes the next value with the reference decoder (null leaves v as it is).
func (s *scanner) full(v any) error {
	raw, err := s.raw()
	if err != nil || raw == nil {
		return err
	}
	return sigsjson.UnmarshalCaseSensitivePreserveInts(raw, v)
}

func (s *scanner) podSpec(spec *corev1.PodSpec) (bool, error) {
	var keys seen
	return s.object(func(key []byte) error {
		var err error
		field := func(bit uint, read func() error) {
			if err = keys.once(bit); err == nil {
				err = read()
			}
		}
		switch string(key) {
		case "serviceAccountName":
			field(0, func() error { return s.str(&spec.ServiceAccountName) })
		case "shareProcessNamespace":
			field(1, func() error { return s.boolPtr(&spec.ShareProcessNamespace) })
		case "hostPID":
			field(2, func() error { return s.boolean(&spec.HostPID) })
		case "hostIPC":
			field(3, func() error { return s.boolean(&spec.HostIPC) })
		case "hostNetwork":
			field(4, func() error { return s.boolean(&spec.HostNetwork) })
		case "hostAliases":
			field(5, func() error { spec.HostAliases = nil; return s.full(&spec.HostAliases) })
		case "dnsPolicy":
			field(6, func() error { return s.str((*string)(&spec.DNSPolicy)) })
		case "dnsConfig":
			field(7, func() error { spec.DNSConfig = nil; return s.full(&spec.DNSConfig) })
		case "volumes":
			field(8, func() error { spec.Volumes = nil; return s.full(&spec.Volumes) })
		case "initContainers":
			field(9, func() error { return s.containers(&spec.InitContainers) })
		case "containers":
			field(10, func() error { return s.containers(&spec.Containers) })
		case "ephemeralContainers":
			field(11, func() error { return s.ephemeralContainers(&spec.EphemeralContainers) })
		default:
			err = s.skip()
		}
		return keyErr(key, err)
	})
}

func (s *scanner) containers(p *[]corev1.Container) error {
	var out []corev1.Container
	ok, err := s.array(func() error {
		var c corev1.Container
		var target string
		if err := s.container(&c, &target, false); err != nil {
			return fmt.Errorf("[%d]: %w", len(out), err)
		}
		out = append(out, c)
		return nil
	})
	if ok && out == nil {
		out = []corev1.Container{}
	}
	*p = out
	return err
}

func (s *scanner) ephemeralContainers(p *[]corev1.EphemeralContainer) error {
	var out []corev1.EphemeralContainer
	ok, err := s.array(func() error {
		var c corev1.EphemeralContainer
		if err := s.container((*corev1.Container)(&c.EphemeralContainerCommon), &c.TargetContainerName, true); err != nil {
			return fmt.Errorf("[%d]: %w", len(out), err)
		}
		out = append(out, c)
		return nil
	})
	if ok && out == nil {
		out = []corev1.EphemeralContainer{}
	}
	*p = out
	return err
}

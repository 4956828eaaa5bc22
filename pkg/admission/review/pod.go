package review

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	sigsjson "sigs.k8s.io/json"

	"github.com/warden-dev/warden/pkg/contract"
)

// Most of a pod is irrelevant to Warden's checks (resources, probes, commands, env values), and
// decoding it was most of an admission's cost. A pod is read in one pass into exactly what the
// checks (pkg/guard's invariant included) and the mutating webhook's patch read, and the rest is
// skipped (validated, not decoded). Where the guard judges a part field by field, the part is
// decoded in full from its bytes: the pod-level host aliases and DNS config, any container named
// like Warden's sidecar and any volume named in Warden's reserved prefix (the seal and the
// update rule cover all of them). A container's own fields the checks read are its name, its
// env (how long, and the names in Warden's reserved prefix), mounts, devices, ports, target and
// the three isolation fields of its security context; what they read of other volumes is in
// volume.go.

// Pod is a decoded pod and what the raw object's shape was.
type Pod struct {
	*corev1.Pod
	// HasMetadata and HasSpec are whether the object had them as objects (not absent or null):
	// a patch into /metadata or /spec needs them.
	HasMetadata, HasSpec bool
	// Parts are the encodings of its Warden-named parts, for guard.Rules.CheckEncoded.
	Parts *Encodings
}

// ReadPod decodes an admitted pod case-sensitively, as the API server does (encoding/json
// would read "serviCeACCount" as serviceAccount), keeping only what a pod's checks read.
func ReadPod(raw []byte) (Pod, error) {
	s := &scanner{b: raw, slabs: &ownLists}
	p, err := s.pod()
	if err == nil {
		err = s.end()
	}
	if err != nil {
		return Pod{}, fmt.Errorf("cannot decode pod: %w", err)
	}
	return p, nil
}

// pod reads the pod object at the scanner.
func (s *scanner) pod() (Pod, error) {
	p := Pod{Pod: &corev1.Pod{}}
	s.fresh = false
	var keys seen
	_, err := s.object(func(key []byte) error {
		var err error
		switch string(key) {
		case "metadata":
			if err = keys.once(0); err == nil {
				p.HasMetadata, err = s.metadata(&p.ObjectMeta.Name, &p.ObjectMeta.GenerateName, &p.Labels, &p.Annotations)
				_, injected := p.Annotations[contract.AnnotationStatus]
				s.fresh = !injected
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
	p.Parts = &s.enc
	return p, err
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
			err = keys.read(0, func() error { return s.str(name) })
		case "generateName":
			err = keys.read(1, func() error { return s.str(generateName) })
		case "labels":
			err = keys.read(2, func() error { return s.stringMap(labels) })
		case "annotations":
			err = keys.read(3, func() error { return s.stringMap(annotations) })
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
		k := s.keep(key)
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
		switch string(key) {
		case "serviceAccountName":
			err = keys.read(0, func() error { return s.str(&spec.ServiceAccountName) })
		case "shareProcessNamespace":
			err = keys.read(1, func() error { return s.boolPtr(&spec.ShareProcessNamespace) })
		case "hostPID":
			err = keys.read(2, func() error { return s.boolean(&spec.HostPID) })
		case "hostIPC":
			err = keys.read(3, func() error { return s.boolean(&spec.HostIPC) })
		case "hostNetwork":
			err = keys.read(4, func() error { return s.boolean(&spec.HostNetwork) })
		case "hostAliases":
			err = keys.read(5, func() error { spec.HostAliases = nil; return s.full(&spec.HostAliases) })
		case "dnsPolicy":
			err = keys.read(6, func() error { return s.str((*string)(&spec.DNSPolicy)) })
		case "dnsConfig":
			err = keys.read(7, func() error { spec.DNSConfig = nil; return s.full(&spec.DNSConfig) })
		case "volumes":
			err = keys.read(8, func() error { return s.volumes(&spec.Volumes) })
		case "initContainers":
			err = keys.read(9, func() error { return s.containers(&spec.InitContainers, &s.enc.init) })
		case "containers":
			err = keys.read(10, func() error { return s.containers(&spec.Containers, &s.enc.regular) })
		case "ephemeralContainers":
			err = keys.read(11, func() error { return s.ephemeralContainers(&spec.EphemeralContainers) })
		default:
			err = s.skip()
		}
		return keyErr(key, err)
	})
}

var (
	keptContainers kept[corev1.Container]
	keptEnv        kept[corev1.EnvVar]
	keptMounts     kept[corev1.VolumeMount]
	keptVolumes    kept[corev1.Volume]
)

// containers reads a list of containers, adding the sidecars' encodings to encs. Room: the
// sidecar the mutating webhook adds.
func (s *scanner) containers(p *[]corev1.Container, encs *[]indexed) error {
	return keptContainers.list(s, p, &s.slabs.containers, s.room(1), func(i int, c *corev1.Container) error {
		var target string
		enc, err := s.container(c, &target, false)
		if err != nil {
			return fmt.Errorf("[%d]: %w", i, err)
		}
		if enc != nil {
			*encs = append(*encs, indexed{i, enc})
		}
		return nil
	})
}

func (s *scanner) ephemeralContainers(p *[]corev1.EphemeralContainer) error {
	return list(s, p, func(i int, c *corev1.EphemeralContainer) error {
		if _, err := s.container((*corev1.Container)(&c.EphemeralContainerCommon), &c.TargetContainerName, true); err != nil {
			return fmt.Errorf("[%d]: %w", i, err)
		}
		return nil
	})
}

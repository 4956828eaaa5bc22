package review

import (
	corev1 "k8s.io/api/core/v1"
	sigsjson "sigs.k8s.io/json"

	"github.com/warden-dev/warden/internal/exactcache"
	"github.com/warden-dev/warden/pkg/guard"
)

// Warden's parts of a pod (its sidecar and volumes) are decoded in full, and the seal needs
// their encodings too: together most of the validating webhook's work. Every pod of an owner
// carries the same parts, byte for byte, so each distinct part's bytes are decoded and encoded
// once and remembered. A part is looked up by its exact bytes, which decide its decoding, so a
// remembered part is exactly what decoding would give; the pod gets a deep copy of it, and the
// seal is still computed and checked for every pod. Tenants' forgeries are remembered too, but
// the cache is bounded in entries and in the size of a part, and dropped whole when full: churn
// costs only decoding as if there were no cache.

const (
	maxParts    = 256
	maxPartSize = 8 << 10
)

type part struct {
	container *corev1.Container
	volume    *corev1.Volume
	// enc is its guard encoding (nil when encoding failed: the guard then encodes and fails).
	enc []byte
}

var parts = &exactcache.Cache[*part]{MaxEntries: maxParts, MaxKey: maxPartSize}

func cachedPart(raw []byte) *part {
	p, _ := parts.Get(raw)
	return p
}

func remember(raw []byte, p *part) {
	if len(raw) <= maxPartSize { // no key copy for a part that will not be kept
		parts.Put(string(raw), p)
	}
}

// sidecarContainer decodes a (non-ephemeral) container named like Warden's sidecar in full.
func sidecarContainer(raw []byte, c *corev1.Container) ([]byte, error) {
	if p := cachedPart(raw); p != nil && p.container != nil {
		p.container.DeepCopyInto(c)
		return p.enc, nil
	}
	*c = corev1.Container{}
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(raw, c); err != nil {
		return nil, err
	}
	enc, _ := guard.ContainerEncoding(c)
	remember(raw, &part{container: c.DeepCopy(), enc: enc})
	return enc, nil
}

// wardenVolume decodes a volume in Warden's reserved names in full.
func wardenVolume(raw []byte, v *corev1.Volume) ([]byte, error) {
	if p := cachedPart(raw); p != nil && p.volume != nil {
		p.volume.DeepCopyInto(v)
		return p.enc, nil
	}
	*v = corev1.Volume{}
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(raw, v); err != nil {
		return nil, err
	}
	enc, _ := guard.VolumeEncoding(v)
	remember(raw, &part{volume: v.DeepCopy(), enc: enc})
	return enc, nil
}

// Encodings are the guard encodings of a decoded pod's Warden-named parts (guard.Encodings),
// valid for the pod as decoded.
type Encodings struct {
	init, regular, volumes []indexed
}

type indexed struct {
	i   int
	enc []byte
}

var _ guard.Encodings = (*Encodings)(nil)

func (e *Encodings) Container(init bool, i int) []byte {
	if init {
		return find(e.init, i)
	}
	return find(e.regular, i)
}

func (e *Encodings) Volume(i int) []byte { return find(e.volumes, i) }

func find(list []indexed, i int) []byte {
	for _, x := range list {
		if x.i == i {
			return x.enc
		}
	}
	return nil
}

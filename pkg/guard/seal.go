package guard

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"

	"github.com/warden-dev/warden/pkg/contract"
)

// A pod that carries warden.dev/status says "Warden injected me". Whether that is true is decided
// by a keyed MAC over what Warden injected (the status, the sidecar container, Warden's volumes),
// not by comparing with what this webhook would inject today: during a rolling upgrade, or for a
// pod injected a year ago, the two differ, and a forger could otherwise copy today's sidecar and
// add one environment variable. Only the webhook replicas hold the key (a Secret in their own
// namespace), and any version checks any other version's seal.
//
// The MAC is computed over a normal form: fields the API server fills in by default (probe
// periods, termination message path, projected volume modes, ...) are cleared when they hold
// their default, so the seal Warden writes before the API server defaults the pod still matches
// the defaulted pod. Any other difference, such as one more env entry, a lifecycle hook, a mount
// or a changed image, breaks the seal.

// sealScheme prefixes every MAC; a future change of the normal form gets a new scheme and old
// seals keep verifying under the old one.
const sealScheme = "s1"

// Keyring holds the keys that seal and verify injections. The key with the greatest id signs;
// every key verifies, so a new key can be added before the old one is retired. Safe for
// concurrent use; Set replaces the keys atomically (rotation without restart).
type Keyring struct {
	keys atomic.Pointer[keySet]
}

type keySet struct {
	signID string
	byID   map[string][]byte
	// macs hold, per key id, HMAC-SHA256 states keyed with it: every admission seals or verifies
	// a status, and keying a fresh HMAC is most of a MAC's cost (Reset restores the keyed state).
	macs map[string]*sync.Pool
}

// MinKeyBytes is the shortest key accepted: HMAC-SHA256 keys shorter than the hash are weak.
const MinKeyBytes = 32

// NewKeyring returns a keyring holding keys (id -> secret).
func NewKeyring(keys map[string][]byte) (*Keyring, error) {
	k := &Keyring{}
	return k, k.Set(keys)
}

// Set replaces the keys.
func (k *Keyring) Set(keys map[string][]byte) error {
	if len(keys) == 0 {
		return errors.New("guard: no status keys")
	}
	ks := &keySet{byID: make(map[string][]byte, len(keys)), macs: make(map[string]*sync.Pool, len(keys))}
	ids := make([]string, 0, len(keys))
	for id, key := range keys {
		if id == "" || strings.ContainsAny(id, ":.") {
			return fmt.Errorf("guard: status key id %q must be non-empty without ':' or '.'", id)
		}
		if len(key) < MinKeyBytes {
			return fmt.Errorf("guard: status key %q has %d bytes, at least %d are needed", id, len(key), MinKeyBytes)
		}
		key := append([]byte(nil), key...)
		ks.byID[id] = key
		ks.macs[id] = &sync.Pool{New: func() any { return hmac.New(sha256.New, key) }}
		ids = append(ids, id)
	}
	sort.Strings(ids)
	ks.signID = ids[len(ids)-1]
	k.keys.Store(ks)
	return nil
}

// Derived returns, for every key, a 32-byte key derived from it for another purpose named by
// label (HKDF-SHA256), and the id of the signing key. Other uses (the sidecar certificates'
// authority) get keys of their own that rotate with the status keys, and the status keys never
// leave the keyring.
func (k *Keyring) Derived(label string) (signID string, keys map[string][]byte) {
	ks := k.keys.Load()
	keys = make(map[string][]byte, len(ks.byID))
	for id, key := range ks.byID {
		d, err := hkdf.Key(sha256.New, key, nil, label, 32)
		if err != nil {
			panic(err) // only for lengths HKDF-SHA256 cannot produce
		}
		keys[id] = d
	}
	return ks.signID, keys
}

// SigningKeyID names the key new seals are made with (part of every seal).
func (k *Keyring) SigningKeyID() string { return k.keys.Load().signID }

// Annotate renders st as the value of warden.dev/status, sealed: the status JSON as written
// (every field, also ones a newer version adds), then the MAC over it and over the digest of
// the sidecar and volumes (see PartsDigest) as its last field.
func (k *Keyring) Annotate(st contract.Status, parts [32]byte) (string, error) {
	st.MAC = ""
	body, err := json.Marshal(st)
	if err != nil {
		return "", err
	}
	ks := k.keys.Load()
	var sum [sha256.Size]byte
	var enc [44]byte // base64 of a SHA-256 sum, unpadded: 43 bytes
	seal := base64.RawURLEncoding.AppendEncode(enc[:0], ks.mac(sum[:0], ks.signID, body, parts))
	var b strings.Builder
	b.Grow(len(body) + len(`,"mac":"`+sealScheme+"::") + len(ks.signID) + len(seal) + 1)
	b.Write(body[:len(body)-1])
	b.WriteString(`,"mac":"` + sealScheme + ":")
	b.WriteString(ks.signID)
	b.WriteByte(':')
	b.Write(seal)
	b.WriteString(`"}`)
	return b.String(), nil
}

// Verify checks a warden.dev/status value against the digest of the pod's sidecar and Warden
// volumes (PartsDigest of the volumes the status names, in its order, which digest computes
// from the status) and returns the status it holds.
func (k *Keyring) Verify(annotation string, digest func(contract.Status) ([32]byte, error)) (contract.Status, error) {
	st, err := parseStatus(annotation)
	if err != nil {
		return st, fmt.Errorf("it is not valid JSON: %v", err)
	}
	i := strings.LastIndex(annotation, `,"mac":"`)
	if i < 0 || !strings.HasSuffix(annotation, `"}`) || annotation[i+len(`,"mac":"`):len(annotation)-2] != st.MAC {
		return st, errors.New("it is not sealed")
	}
	body := annotation[:i] + "}"
	scheme, rest, _ := strings.Cut(st.MAC, ":")
	id, enc, ok := strings.Cut(rest, ":")
	if !ok || scheme != sealScheme {
		return st, errors.New("its seal is in a form this webhook cannot read")
	}
	ks := k.keys.Load()
	if _, known := ks.byID[id]; !known {
		return st, fmt.Errorf("it is sealed with key %q, which this cluster's Warden does not hold", id)
	}
	got, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		return st, errors.New("its seal is not valid base64")
	}
	parts, err := digest(st)
	if err != nil {
		return st, err
	}
	var sum [sha256.Size]byte
	if !hmac.Equal(got, ks.mac(sum[:0], id, []byte(body), parts)) {
		return st, errors.New("its seal does not match its status, sidecar and volumes: they were not written by Warden, or were changed since")
	}
	return st, nil
}

// macPrefix names what the MAC is over, so it is never valid for anything else.
var macPrefix = []byte("warden.dev/status " + sealScheme + "\n")

// mac appends to dst the MAC over status and parts under the key id, which the set holds.
func (ks *keySet) mac(dst []byte, id string, status []byte, parts [32]byte) []byte {
	pool := ks.macs[id]
	m := pool.Get().(hash.Hash)
	m.Reset()
	_, _ = m.Write(macPrefix)
	_, _ = m.Write(parts[:])
	_, _ = m.Write(status)
	dst = m.Sum(dst)
	pool.Put(m)
	return dst
}

// PartsDigest is the SHA-256 of the normal forms of the sidecar and Warden's volumes. Warden
// computes it once per kind of injection; only the status differs from pod to pod.
func PartsDigest(sidecar *corev1.Container, volumes []corev1.Volume) ([32]byte, error) {
	encs := make([][]byte, 0, 1+len(volumes))
	enc, err := ContainerEncoding(sidecar)
	if err != nil {
		return [32]byte{}, err
	}
	encs = append(encs, enc)
	for i := range volumes {
		if enc, err = VolumeEncoding(&volumes[i]); err != nil {
			return [32]byte{}, err
		}
		encs = append(encs, enc)
	}
	return digestOf(encs), nil
}

// ContainerEncoding is a sidecar's share of PartsDigest: the JSON of its normal form and a
// newline. It depends only on the container, so a decoder that meets the same container bytes
// again may keep it (and hand it to Rules.CheckEncoded).
func ContainerEncoding(c *corev1.Container) ([]byte, error) { return line(NormalContainer(c)) }

// VolumeEncoding is a volume's share of PartsDigest (see ContainerEncoding).
func VolumeEncoding(v *corev1.Volume) ([]byte, error) { return line(NormalVolume(v)) }

// line is v as json.Encoder writes it: Marshal's bytes (HTML escaped) and a newline.
func line(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	return append(b, '\n'), err
}

// digestOf hashes the parts' encodings in order, as one stream.
func digestOf(encs [][]byte) [32]byte {
	h := sha256.New()
	for _, e := range encs {
		_, _ = h.Write(e)
	}
	var d [32]byte
	h.Sum(d[:0])
	return d
}

// NormalContainer is c with every field that holds its API-server default cleared, so a container
// as Warden wrote it and as the API server stored it have the same normal form.
func NormalContainer(c *corev1.Container) *corev1.Container {
	n := c.DeepCopy()
	if n.TerminationMessagePath == corev1.TerminationMessagePathDefault {
		n.TerminationMessagePath = ""
	}
	if n.TerminationMessagePolicy == corev1.TerminationMessageReadFile {
		n.TerminationMessagePolicy = ""
	}
	if n.ImagePullPolicy == defaultPullPolicy(n.Image) {
		n.ImagePullPolicy = ""
	}
	for i := range n.Env {
		if f := n.Env[i].ValueFrom; f != nil && f.FieldRef != nil && f.FieldRef.APIVersion == "v1" {
			f.FieldRef.APIVersion = ""
		}
	}
	for i := range n.Ports {
		if n.Ports[i].Protocol == corev1.ProtocolTCP {
			n.Ports[i].Protocol = ""
		}
	}
	for _, p := range []*corev1.Probe{n.StartupProbe, n.LivenessProbe, n.ReadinessProbe} {
		normalProbe(p)
	}
	if l := n.Lifecycle; l != nil {
		normalHandler(l.PostStart)
		normalHandler(l.PreStop)
	}
	// The API server sets a missing request to its limit.
	for name, limit := range n.Resources.Limits {
		if req, ok := n.Resources.Requests[name]; ok && req.Cmp(limit) == 0 {
			delete(n.Resources.Requests, name)
		}
	}
	if len(n.Resources.Requests) == 0 {
		n.Resources.Requests = nil
	}
	return n
}

func normalProbe(p *corev1.Probe) {
	if p == nil {
		return
	}
	for _, d := range []struct {
		f   *int32
		def int32
	}{{&p.TimeoutSeconds, 1}, {&p.PeriodSeconds, 10}, {&p.SuccessThreshold, 1}, {&p.FailureThreshold, 3}} {
		if *d.f == d.def {
			*d.f = 0
		}
	}
	if p.HTTPGet != nil && p.HTTPGet.Scheme == corev1.URISchemeHTTP {
		p.HTTPGet.Scheme = ""
	}
}

func normalHandler(h *corev1.LifecycleHandler) {
	if h != nil && h.HTTPGet != nil && h.HTTPGet.Scheme == corev1.URISchemeHTTP {
		h.HTTPGet.Scheme = ""
	}
}

// defaultPullPolicy is the API server's choice when imagePullPolicy is empty.
func defaultPullPolicy(image string) corev1.PullPolicy {
	ref := image
	if i := strings.LastIndex(ref, "/"); i >= 0 {
		ref = ref[i+1:]
	}
	if strings.Contains(ref, "@") {
		return corev1.PullIfNotPresent
	}
	if _, tag, ok := strings.Cut(ref, ":"); !ok || tag == "latest" {
		return corev1.PullAlways
	}
	return corev1.PullIfNotPresent
}

// defaultMode is the API server's default file mode for configMap, secret, downwardAPI and
// projected volumes (0644).
const defaultMode = 0o644

// NormalVolume is v with its API-server defaults cleared (see NormalContainer).
func NormalVolume(v *corev1.Volume) *corev1.Volume {
	n := v.DeepCopy()
	clearMode := func(m **int32) {
		if *m != nil && **m == defaultMode {
			*m = nil
		}
	}
	switch s := &n.VolumeSource; {
	case s.Projected != nil:
		clearMode(&s.Projected.DefaultMode)
		for i := range s.Projected.Sources {
			if t := s.Projected.Sources[i].ServiceAccountToken; t != nil && t.ExpirationSeconds != nil && *t.ExpirationSeconds == 3600 {
				t.ExpirationSeconds = nil
			}
			if d := s.Projected.Sources[i].DownwardAPI; d != nil {
				for j := range d.Items {
					if f := d.Items[j].FieldRef; f != nil && f.APIVersion == "v1" {
						f.APIVersion = ""
					}
				}
			}
		}
	case s.ConfigMap != nil:
		clearMode(&s.ConfigMap.DefaultMode)
	case s.Secret != nil:
		clearMode(&s.Secret.DefaultMode)
	case s.DownwardAPI != nil:
		clearMode(&s.DownwardAPI.DefaultMode)
	case s.HostPath != nil:
		if s.HostPath.Type != nil && *s.HostPath.Type == corev1.HostPathUnset {
			s.HostPath.Type = nil
		}
	case s.Ephemeral != nil && s.Ephemeral.VolumeClaimTemplate != nil:
		if m := s.Ephemeral.VolumeClaimTemplate.Spec.VolumeMode; m != nil && *m == corev1.PersistentVolumeFilesystem {
			s.Ephemeral.VolumeClaimTemplate.Spec.VolumeMode = nil
		}
	case s.ISCSI != nil:
		if s.ISCSI.ISCSIInterface == "default" {
			s.ISCSI.ISCSIInterface = ""
		}
	}
	return n
}

// NewRandomKeyring holds one fresh random key: for a single process that verifies only what it
// sealed itself (benchmarks, tools). A cluster shares its keys through the webhook's Secret.
func NewRandomKeyring() (*Keyring, error) {
	key := make([]byte, MinKeyBytes)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	return NewKeyring(map[string][]byte{"local": key})
}

// Package podcert is the sidecar's identity towards the broker: a client certificate that only
// the kubelet can obtain. The kubelet asks for it with a PodCertificateRequest (the sidecar's
// podCertificate projected volume, signer warden.dev/sidecar); Warden's signer (signer.go)
// issues it only for a pod that passes the pod invariant with a valid seal, and the broker
// trusts a TLS client certificate only when its authority issued it (Authority.Pool).
//
// The authority needs no Secret of its own: its keys are derived from the status keys (the
// Secret every replica already reads), one Ed25519 CA per status key. Derivation and Ed25519
// signatures are deterministic, so every replica builds the same CA certificates, verifies what
// any other issued, and the authority rotates with the status keys.
package podcert

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/warden-dev/warden/pkg/guard"
)

// deriveLabel separates the authority's keys from the seal's (guard.Keyring.Derived).
const deriveLabel = "warden.dev/sidecar certificate authority v1"

// TrustDomain is the authority of every sidecar identity URI.
const TrustDomain = "warden.dev"

// Identity is the pod a sidecar certificate was issued to.
type Identity struct {
	Namespace      string
	ServiceAccount string
	Pod            string
	PodUID         types.UID
}

// Owner is the identity's owner, "namespace/serviceaccount".
func (id Identity) Owner() string { return id.Namespace + "/" + id.ServiceAccount }

// URI is the identity as the certificate's one URI SAN:
// spiffe://warden.dev/ns/NAMESPACE/sa/SERVICEACCOUNT/pod/NAME/UID. Everything up to the service
// account is the owner, so Vault's cert auth can match an owner with a glob
// (allowed_uri_sans=spiffe://warden.dev/ns/apps/sa/svc/*).
func (id Identity) URI() *url.URL {
	return &url.URL{Scheme: "spiffe", Host: TrustDomain,
		Path: "/ns/" + id.Namespace + "/sa/" + id.ServiceAccount + "/pod/" + id.Pod + "/" + string(id.PodUID)}
}

// ParseIdentity reads the identity of a certificate the authority issued (its chain verified).
func ParseIdentity(cert *x509.Certificate) (Identity, error) {
	if len(cert.URIs) != 1 {
		return Identity{}, fmt.Errorf("the certificate has %d URI names, a Warden sidecar certificate has one", len(cert.URIs))
	}
	u := cert.URIs[0]
	parts := strings.Split(strings.TrimPrefix(u.Path, "/"), "/")
	if u.Scheme != "spiffe" || u.Host != TrustDomain || u.RawQuery != "" || u.Fragment != "" || len(parts) != 7 ||
		parts[0] != "ns" || parts[2] != "sa" || parts[4] != "pod" {
		return Identity{}, fmt.Errorf("%q is not a Warden sidecar identity", u)
	}
	id := Identity{Namespace: parts[1], ServiceAccount: parts[3], Pod: parts[5], PodUID: types.UID(parts[6])}
	for _, p := range []string{id.Namespace, id.ServiceAccount, id.Pod, string(id.PodUID)} {
		if p == "" {
			return Identity{}, fmt.Errorf("%q has an empty part", u)
		}
	}
	return id, nil
}

// Authority issues and verifies sidecar certificates with keys derived from the status keys.
type Authority struct {
	keys *guard.Keyring

	mu  sync.Mutex
	cur *authorityState
}

type authorityState struct {
	fingerprint [32]byte
	signer      ed25519.PrivateKey
	signCert    *x509.Certificate
	pool        *x509.CertPool
	bundle      []byte
}

// NewAuthority returns the authority of keys.
func NewAuthority(keys *guard.Keyring) *Authority { return &Authority{keys: keys} }

// state is the CA set for the keyring's current keys, rebuilt only when they change.
func (a *Authority) state() (*authorityState, error) {
	signID, derived := a.keys.Derived(deriveLabel)
	ids := make([]string, 0, len(derived))
	for id := range derived {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	h := sha256.New()
	for _, id := range ids {
		h.Write([]byte(id + "\x00"))
		h.Write(derived[id])
	}
	var fp [32]byte
	copy(fp[:], h.Sum(nil))
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cur != nil && a.cur.fingerprint == fp {
		return a.cur, nil
	}
	st := &authorityState{fingerprint: fp, pool: x509.NewCertPool()}
	var bundle bytes.Buffer
	for _, id := range ids {
		key := ed25519.NewKeyFromSeed(derived[id])
		cert, err := caCertificate(id, key)
		if err != nil {
			return nil, err
		}
		st.pool.AddCert(cert)
		_ = pem.Encode(&bundle, &pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
		if id == signID {
			st.signer, st.signCert = key, cert
		}
	}
	st.bundle = bundle.Bytes()
	a.cur = st
	return st, nil
}

// caCertificate is the self-signed CA of one key: every field derived from the key id and the
// key, so every replica makes the same certificate byte for byte.
func caCertificate(id string, key ed25519.PrivateKey) (*x509.Certificate, error) {
	pub := key.Public().(ed25519.PublicKey)
	ski := sha256.Sum256(pub)
	tmpl := &x509.Certificate{
		SerialNumber:          new(big.Int).SetBytes(ski[:16]),
		Subject:               pkix.Name{Organization: []string{"Warden"}, CommonName: "Warden sidecar CA " + id},
		NotBefore:             time.Unix(0, 0).UTC(),
		NotAfter:              time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		SubjectKeyId:          ski[:20],
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		return nil, fmt.Errorf("podcert: CA for key %s: %w", id, err)
	}
	return x509.ParseCertificate(der)
}

// Pool is the set of CAs a sidecar certificate must chain to: one per status key, so a
// certificate stays valid through a key rotation until the old key is removed.
func (a *Authority) Pool() (*x509.CertPool, error) {
	st, err := a.state()
	if err != nil {
		return nil, err
	}
	return st.pool, nil
}

// BundlePEM is every CA certificate, PEM (for Vault's cert auth and anyone else who verifies
// sidecars).
func (a *Authority) BundlePEM() ([]byte, error) {
	st, err := a.state()
	if err != nil {
		return nil, err
	}
	return st.bundle, nil
}

// ErrUnsupportedKey is a subject key the authority does not sign.
var ErrUnsupportedKey = errors.New("podcert: unsupported key type (ECDSA P-256/P-384/P-521, Ed25519 and RSA of 3072 bits or more are)")

// Issue signs a client certificate for pub, valid from notBefore to notAfter, naming id. It
// returns the chain as PEM (the leaf: the CA is the verifier's root).
func (a *Authority) Issue(pub crypto.PublicKey, id Identity, notBefore, notAfter time.Time) (string, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey, ed25519.PublicKey:
	case *rsa.PublicKey:
		if k.N.BitLen() < 3072 {
			return "", ErrUnsupportedKey
		}
	default:
		return "", ErrUnsupportedKey
	}
	st, err := a.state()
	if err != nil {
		return "", err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber:   serial,
		Subject:        pkix.Name{Organization: []string{"Warden"}, CommonName: id.Owner()},
		NotBefore:      notBefore,
		NotAfter:       notAfter,
		KeyUsage:       x509.KeyUsageDigitalSignature,
		ExtKeyUsage:    []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		URIs:           []*url.URL{id.URI()},
		AuthorityKeyId: st.signCert.SubjectKeyId,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, st.signCert, pub, st.signer)
	if err != nil {
		return "", fmt.Errorf("podcert: signing: %w", err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), nil
}

// Verify checks a client certificate chain against the authority and returns its identity. The
// broker's TLS listener only asks for the certificate (the CAs rotate with the status keys), so
// this is where the chain is verified, on each request not served from the identity cache.
func (a *Authority) Verify(chain []*x509.Certificate, now time.Time) (Identity, error) {
	if len(chain) == 0 {
		return Identity{}, errors.New("no client certificate")
	}
	pool, err := a.Pool()
	if err != nil {
		return Identity{}, err
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return Identity{}, fmt.Errorf("the client certificate is not a Warden sidecar's: %w", err)
	}
	return ParseIdentity(chain[0])
}

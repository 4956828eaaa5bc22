package podcert

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warden-dev/warden/pkg/guard"
)

func keyring(t testing.TB, keys map[string]byte) *guard.Keyring {
	t.Helper()
	m := map[string][]byte{}
	for id, b := range keys {
		m[id] = bytes.Repeat([]byte{b}, guard.MinKeyBytes)
	}
	k, err := guard.NewKeyring(m)
	require.NoError(t, err)
	return k
}

func parseChain(t testing.TB, chain string) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	rest := []byte(chain)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return out
		}
		c, err := x509.ParseCertificate(b.Bytes)
		require.NoError(t, err)
		out = append(out, c)
	}
}

func ecKey(t testing.TB) crypto.PublicKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return &k.PublicKey
}

var testID = Identity{Namespace: "apps", ServiceAccount: "svc", Pod: "web-0", PodUID: "0d6f2a1e-uid"}

// Every replica derives the same authority from the same status keys: what one issues, another
// verifies; the CA certificates are identical byte for byte.
func TestAuthorityAcrossReplicas(t *testing.T) {
	a, b := NewAuthority(keyring(t, map[string]byte{"k1": 1})), NewAuthority(keyring(t, map[string]byte{"k1": 1}))
	pa, err := a.BundlePEM()
	require.NoError(t, err)
	pb, err := b.BundlePEM()
	require.NoError(t, err)
	assert.Equal(t, pa, pb)
	now := time.Now()
	chain, err := a.Issue(ecKey(t), testID, now, now.Add(time.Hour))
	require.NoError(t, err)
	id, err := b.Verify(parseChain(t, chain), now.Add(time.Minute))
	require.NoError(t, err)
	assert.Equal(t, testID, id)
	assert.Equal(t, "spiffe://warden.dev/ns/apps/sa/svc/pod/web-0/0d6f2a1e-uid", id.URI().String())

	other := NewAuthority(keyring(t, map[string]byte{"k1": 2}))
	_, err = other.Verify(parseChain(t, chain), now)
	assert.ErrorContains(t, err, "not a Warden sidecar's", "another cluster's keys")
	_, err = a.Verify(parseChain(t, chain), now.Add(2*time.Hour))
	assert.ErrorContains(t, err, "expired")
	_, err = a.Verify(nil, now)
	assert.Error(t, err)
}

// The authority rotates with the status keys: a certificate of the old key verifies while that
// key is in the ring; new certificates come from the greatest key.
func TestAuthorityRotation(t *testing.T) {
	keys := keyring(t, map[string]byte{"k1": 1})
	a := NewAuthority(keys)
	now := time.Now()
	old, err := a.Issue(ecKey(t), testID, now, now.Add(time.Hour))
	require.NoError(t, err)
	require.NoError(t, keys.Set(map[string][]byte{"k1": bytes.Repeat([]byte{1}, 32), "k2": bytes.Repeat([]byte{2}, 32)}))
	_, err = a.Verify(parseChain(t, old), now)
	assert.NoError(t, err, "the old key still verifies")
	fresh, err := a.Issue(ecKey(t), testID, now, now.Add(time.Hour))
	require.NoError(t, err)
	assert.Equal(t, "Warden sidecar CA k2", parseChain(t, fresh)[0].Issuer.CommonName)
	require.NoError(t, keys.Set(map[string][]byte{"k2": bytes.Repeat([]byte{2}, 32)}))
	_, err = a.Verify(parseChain(t, old), now)
	assert.Error(t, err, "the retired key's certificates stop verifying")
	_, err = a.Verify(parseChain(t, fresh), now)
	assert.NoError(t, err)
}

func TestIssueKeys(t *testing.T) {
	a := NewAuthority(keyring(t, map[string]byte{"k1": 1}))
	now := time.Now()
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	_, err = a.Issue(edPub, testID, now, now.Add(time.Hour))
	assert.NoError(t, err)
	small, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	_, err = a.Issue(&small.PublicKey, testID, now, now.Add(time.Hour))
	assert.ErrorIs(t, err, ErrUnsupportedKey)
	_, err = a.Issue("not a key", testID, now, now.Add(time.Hour))
	assert.ErrorIs(t, err, ErrUnsupportedKey)
}

func TestParseIdentity(t *testing.T) {
	for _, tc := range []struct {
		uris []string
		ok   bool
	}{
		{[]string{"spiffe://warden.dev/ns/apps/sa/svc/pod/p/uid"}, true},
		{[]string{"spiffe://warden.dev/ns/apps/sa/svc/pod/p/uid", "spiffe://warden.dev/ns/x/sa/y/pod/p/u"}, false},
		{[]string{"spiffe://evil.example/ns/apps/sa/svc/pod/p/uid"}, false},
		{[]string{"https://warden.dev/ns/apps/sa/svc/pod/p/uid"}, false},
		{[]string{"spiffe://warden.dev/ns/apps/sa/svc"}, false},
		{[]string{"spiffe://warden.dev/ns/apps/sa/svc/pod/p/uid/extra"}, false},
		{[]string{"spiffe://warden.dev/ns//sa/svc/pod/p/uid"}, false},
		{[]string{"spiffe://warden.dev/ns/apps/sa/svc/pod/p/uid?x=1"}, false},
		{[]string{"spiffe://warden.dev/xx/apps/sa/svc/pod/p/uid"}, false},
		{nil, false},
	} {
		c := &x509.Certificate{}
		for _, s := range tc.uris {
			u, err := url.Parse(s)
			require.NoError(t, err)
			c.URIs = append(c.URIs, u)
		}
		_, err := ParseIdentity(c)
		assert.Equal(t, tc.ok, err == nil, "%v: %v", tc.uris, err)
	}
}

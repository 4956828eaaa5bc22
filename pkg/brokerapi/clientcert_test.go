package brokerapi

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warden-dev/warden/pkg/grants"
)

// bundle is a credential bundle as the kubelet writes it: key first, then the chain.
func bundle(t *testing.T, cn string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	k, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	return append(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
}

func TestClientCertificate(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "credentials.pem")
	c := &ClientCertificate{File: file}
	_, err := c.Get(nil)
	assert.ErrorIs(t, err, grants.ErrUnavailable, "not projected yet")

	require.NoError(t, os.WriteFile(file, bundle(t, "first"), 0o600))
	got, err := c.Get(nil)
	require.NoError(t, err)
	assert.Equal(t, "first", got.Leaf.Subject.CommonName)
	again, err := c.Get(nil)
	require.NoError(t, err)
	assert.Same(t, got, again, "read once while the file is unchanged")

	// The kubelet rotates: a new file replaces the old one.
	next := filepath.Join(dir, "next.pem")
	require.NoError(t, os.WriteFile(next, bundle(t, "second-and-longer"), 0o600))
	require.NoError(t, os.Rename(next, file))
	got, err = c.Get(nil)
	require.NoError(t, err)
	assert.Equal(t, "second-and-longer", got.Leaf.Subject.CommonName)

	require.NoError(t, os.WriteFile(file, []byte("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n"), 0o600))
	_, err = c.Get(nil)
	assert.ErrorIs(t, err, grants.ErrUnavailable, "a broken bundle is an outage, not a panic")
}

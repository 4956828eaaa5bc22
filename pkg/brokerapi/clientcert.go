package brokerapi

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/warden-dev/warden/pkg/grants"
)

// ClientCertificate is the sidecar's pod certificate for mutual TLS with the broker: a
// credential bundle as the kubelet writes a podCertificate projection (a PEM private key, then
// the certificate chain) in one file, so key and chain are always read together. It is re-read
// whenever the file changes (the kubelet rotates it at half its lifetime) or the certificate in
// hand has expired.
type ClientCertificate struct {
	File string

	mu       sync.Mutex
	cert     *tls.Certificate
	modified time.Time
	size     int64
}

// Get is a tls.Config.GetClientCertificate.
func (c *ClientCertificate) Get(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	fi, err := os.Stat(c.File)
	if err != nil {
		return nil, fmt.Errorf("%w: pod certificate: %v", grants.ErrUnavailable, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cert != nil && fi.ModTime().Equal(c.modified) && fi.Size() == c.size && time.Now().Before(c.cert.Leaf.NotAfter) {
		return c.cert, nil
	}
	bundle, err := os.ReadFile(c.File)
	if err != nil {
		return nil, fmt.Errorf("%w: pod certificate: %v", grants.ErrUnavailable, err)
	}
	// X509KeyPair takes the CERTIFICATE blocks from the first argument and the key block from
	// the second, so one bundle serves as both.
	cert, err := tls.X509KeyPair(bundle, bundle)
	if err != nil {
		return nil, fmt.Errorf("%w: pod certificate %s: %v", grants.ErrUnavailable, c.File, err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("%w: pod certificate %s: %v", grants.ErrUnavailable, c.File, err)
		}
	}
	c.cert, c.modified, c.size = &cert, fi.ModTime(), fi.Size()
	return c.cert, nil
}

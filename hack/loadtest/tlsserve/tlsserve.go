// Package tlsserve is what the load tool's webhook children share, Warden's (hack/loadtest
// -serve) and vault-k8s's (hack/bench/vaultk8s/serve): a fresh self-signed certificate, the
// handshake with the parent (the child prints its URL and CA file on one line), and waiting
// for the server to accept.
package tlsserve

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// CertDir writes a self-signed certificate for 127.0.0.1 as tls.crt and tls.key in a new
// directory, removed when ctx ends.
func CertDir(ctx context.Context) (string, error) {
	dir, err := os.MkdirTemp("", "warden-load-")
	if err != nil {
		return "", err
	}
	go func() { <-ctx.Done(); os.RemoveAll(dir) }()
	return dir, selfSigned(dir)
}

// FreePort is a loopback port nothing listens on (the webhook server wants a port, not a listener).
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// WaitTLS waits until the server on port completes a TLS handshake.
func WaitTLS(port int) error {
	for i := 0; i < 100; i++ {
		if c, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{InsecureSkipVerify: true}); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("webhook server did not start")
}

// Child starts argv, a webhook child, and reads the base URL and CA file it announces. The
// webhook runs in its own process, as it would beside the API server: the generator's own
// allocations and garbage collection must not stall the server.
func Child(ctx context.Context, argv []string) (*exec.Cmd, string, string, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", "", err
	}
	if err := cmd.Start(); err != nil {
		return nil, "", "", err
	}
	var url, ca string
	if _, err := fmt.Fscanln(out, &url, &ca); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, "", "", fmt.Errorf("webhook child %s: %w", argv[0], err)
	}
	return cmd, url, ca, nil
}

// Announce is the child's side of Child: the base URL and the CA file.
func Announce(port int, certDir string) {
	fmt.Printf("https://127.0.0.1:%d %s\n", port, filepath.Join(certDir, "tls.crt"))
}

func selfSigned(dir string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "warden-loadtest"},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(filepath.Join(dir, "tls.crt"), certPEM, 0o600); err != nil {
		return err
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	if err := os.WriteFile(filepath.Join(dir, "tls.key"), keyPEM, 0o600); err != nil {
		return err
	}
	return nil
}

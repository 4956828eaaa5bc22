package app

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"
)

// certExpiry exports when the serving certificate in CertDir expires, read at every scrape (the
// file is rotated in place by cert-manager or certs/gen-certs.sh), so an alert can fire days
// before a fail-closed webhook stops answering TLS. 0 when the file cannot be read.
func certExpiry(certDir string) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "warden_certificate_expiry_timestamp_seconds",
		Help: "When the webhook's serving certificate (tls.crt in --cert-dir) expires, in Unix seconds.",
	}, func() float64 {
		data, err := os.ReadFile(filepath.Join(certDir, "tls.crt"))
		if err != nil {
			return 0
		}
		block, _ := pem.Decode(data)
		if block == nil {
			return 0
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return 0
		}
		return float64(cert.NotAfter.Unix())
	})
}

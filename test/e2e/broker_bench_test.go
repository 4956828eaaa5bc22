package e2e

import (
	"crypto/tls"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/warden-dev/warden/pkg/brokerapi"
	"github.com/warden-dev/warden/pkg/contract"
	"github.com/warden-dev/warden/pkg/grants"
)

// BenchmarkBrokerCheck is one grant check from a sidecar to the suite's broker (real API server,
// real TLS), by the sidecar's credential: its pod certificate (mutual TLS) or a projected token
// (token identity), over a kept-alive connection as the sidecar's client keeps it, or a new
// connection each time (a TLS handshake per request, the certificate verified each time).
// The verified identity is cached for 10 s in both cases, so a long run includes the
// re-verification (a pod read; for tokens also a TokenReview) every 10 s.
//
//	make bench-broker
func BenchmarkBrokerCheck(b *testing.B) {
	tenantSetup(b)
	pod := onNode(b, "bench-broker")
	certFile := kubeletCertificate(b, pod)
	tok := token(b, pod, contract.TokenAudience)
	for _, cred := range []string{"certificate", "token"} {
		for _, conn := range []string{"keep-alive", "new-connection"} {
			b.Run(cred+"/"+conn, func(b *testing.B) {
				cfg := &tls.Config{RootCAs: caPool(b)}
				c := &brokerapi.Client{BaseURL: brokerURL}
				if cred == "certificate" {
					cfg.GetClientCertificate = (&brokerapi.ClientCertificate{File: certFile}).Get
				} else {
					c = brokerClient(b, brokerURL, tok, caPool(b))
				}
				c.HTTP = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
					TLSClientConfig: cfg, DisableKeepAlives: conn == "new-connection", MaxIdleConnsPerHost: 4}}
				call := func() {
					d, err := c.Check(ctx(b), "apps/svc-prod-app-1", grants.Caller{User: "user-ds-1"}, "prod-dataset-1")
					require.NoError(b, err)
					require.True(b, d.Allowed())
				}
				call() // verified and cached once, as a running sidecar is
				lat := make([]time.Duration, 0, b.N)
				b.ResetTimer()
				for b.Loop() {
					t0 := time.Now()
					call()
					lat = append(lat, time.Since(t0))
				}
				b.StopTimer()
				reportPercentiles(b, lat)
			})
		}
	}
}

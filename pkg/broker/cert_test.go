package broker

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/warden-dev/warden/pkg/admission/mutate"
	"github.com/warden-dev/warden/pkg/brokerapi"
	"github.com/warden-dev/warden/pkg/grants"
	"github.com/warden-dev/warden/pkg/guard"
	"github.com/warden-dev/warden/pkg/podcert"
	"github.com/warden-dev/warden/pkg/policy"
)

// certFor issues a client certificate for id with authority a.
func certFor(t *testing.T, a *podcert.Authority, id podcert.Identity, notBefore, notAfter time.Time) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	chain, err := a.Issue(&key.PublicKey, id, notBefore, notAfter)
	require.NoError(t, err)
	der, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	c, err := tls.X509KeyPair([]byte(chain), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	require.NoError(t, err)
	return c
}

// A pod certificate from Warden's authority is the sidecar's identity; tokens are refused
// unless the broker accepts them, and a certificate proves only the pod it names.
func TestBrokerCertificates(t *testing.T) {
	f := newFixture(t)
	pol, err := policy.Parse([]byte(testPolicy))
	require.NoError(t, err)
	cfg := mutate.DefaultConfig()
	cfg.SidecarImage = "example.com/sidecar:test"
	authority := podcert.NewAuthority(f.keys)
	f.srv, err = New(Options{Kube: f.kube, Grants: grants.NewPolicyEngine(func() policy.View { return pol }),
		Pods: cfg.Rules(f.keys), Namespaces: labels{"apps": optedIn, "plain": {}}, Certificates: authority})
	require.NoError(t, err)
	token := f.pod(t, "apps", "good", true)
	f.pod(t, "apps", "forged", true, func(p *corev1.Pod) { p.Spec.InitContainers[0].Image = "evil" })
	f.pod(t, "plain", "elsewhere", true)

	srv := httptest.NewUnstartedServer(f.srv)
	srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	srv.StartTLS()
	defer srv.Close()
	otherKeys, err := guard.NewRandomKeyring()
	require.NoError(t, err)
	stranger := podcert.NewAuthority(otherKeys)
	now := time.Now()
	good := podcert.Identity{Namespace: "apps", ServiceAccount: "svc", Pod: "good", PodUID: "uid-good"}
	with := func(change func(*podcert.Identity)) podcert.Identity { id := good; change(&id); return id }

	call := func(cert *tls.Certificate, bearer string) (int, string) {
		cfg := &tls.Config{RootCAs: x509.NewCertPool()}
		cfg.RootCAs.AddCert(srv.Certificate())
		if cert != nil {
			cfg.Certificates = []tls.Certificate{*cert}
		}
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
		req, _ := http.NewRequest(http.MethodPost, srv.URL+brokerapi.PathCheck, strings.NewReader(`{"dataset":"d1","caller":{"user":"ann"}}`))
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := c.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	cert := func(a *podcert.Authority, id podcert.Identity, nb, na time.Time) *tls.Certificate {
		c := certFor(t, a, id, nb, na)
		return &c
	}
	for _, tc := range []struct {
		name   string
		cert   *tls.Certificate
		bearer string
		status int
		msg    string
	}{
		{"the pod's certificate", cert(authority, good, now, now.Add(time.Hour)), "", 200, `"can_read":true`},
		{"a certificate of another authority", cert(stranger, good, now, now.Add(time.Hour)), "", 401, "not a Warden sidecar's"},
		{"an expired certificate", cert(authority, good, now.Add(-2*time.Hour), now.Add(-time.Hour)), "", 401, "expired"},
		{"a certificate for a replaced pod", cert(authority, with(func(i *podcert.Identity) { i.PodUID = "uid-old" }), now, now.Add(time.Hour)), "", 401, "was replaced"},
		{"a certificate for another service account", cert(authority, with(func(i *podcert.Identity) { i.ServiceAccount = "admin" }), now, now.Add(time.Hour)), "", 401, "runs as"},
		{"a certificate for a forged pod", cert(authority, with(func(i *podcert.Identity) { i.Pod, i.PodUID = "forged", "uid-forged" }), now, now.Add(time.Hour)), "", 403, "seal"},
		{"a certificate in a namespace not opted in", cert(authority, podcert.Identity{Namespace: "plain", ServiceAccount: "svc", Pod: "elsewhere", PodUID: "uid-elsewhere"}, now, now.Add(time.Hour)), "", 403, "not opted in"},
		{"a token a tenant minted", nil, token, 401, "accepts no service-account tokens"},
		{"nothing", nil, "", 401, "pod certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, msg := call(tc.cert, tc.bearer)
			assert.Equal(t, tc.status, status, msg)
			assert.Contains(t, msg, tc.msg)
		})
	}
	assert.Zero(t, f.reviews, "no token was ever reviewed")
}

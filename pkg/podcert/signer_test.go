package podcert

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	certv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	"github.com/warden-dev/warden/internal/testing/podfixture"
	"github.com/warden-dev/warden/pkg/admission/mutate"
	"github.com/warden-dev/warden/pkg/contract"
	"github.com/warden-dev/warden/pkg/guard"
	"github.com/warden-dev/warden/pkg/policy"
)

type namespaces map[string]map[string]string

func (n namespaces) Labels(_ context.Context, name string) (map[string]string, error) {
	if l, ok := n[name]; ok {
		return l, nil
	}
	return nil, errors.New("namespace lookup failed")
}

type staticPolicy struct{ p *policy.Policy }

func (s staticPolicy) View() policy.View { return s.p }

var optedIn = map[string]string{contract.LabelInject: contract.LabelInjectEnabled}

// injected is a pod as the mutating webhook leaves it, on node n1.
func injected(t *testing.T, keys *guard.Keyring, cfg mutate.Config, ns, name string) *corev1.Pod {
	t.Helper()
	pol, err := policy.Parse([]byte("owners:\n  - {serviceAccount: " + ns + "/svc, environment: prod}\n"))
	require.NoError(t, err)
	h, err := mutate.NewHandler(cfg, "warden-system", staticPolicy{pol}, namespaces{ns: optedIn}, cfg.Rules(keys), nil, nil)
	require.NoError(t, err)
	p, err := podfixture.Inject(h, ns, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, UID: types.UID("uid-" + name)},
		Spec: corev1.PodSpec{ServiceAccountName: "svc", NodeName: "n1", Containers: []corev1.Container{{Name: "app", Image: "python"}}}})
	require.NoError(t, err)
	return p
}

func csr(t *testing.T, key crypto.Signer) []byte {
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	require.NoError(t, err)
	return der
}

// request is what the kubelet creates for pod p.
func request(t *testing.T, p *corev1.Pod, name string, key crypto.Signer) *certv1.PodCertificateRequest {
	return &certv1.PodCertificateRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: p.Namespace},
		Spec: certv1.PodCertificateRequestSpec{SignerName: contract.SignerName, PodName: p.Name, PodUID: p.UID,
			ServiceAccountName: "svc", ServiceAccountUID: "sa-uid", NodeName: "n1", NodeUID: "node-uid",
			MaxExpirationSeconds: ptr.To[int32](86400), StubPKCS10Request: csr(t, key)},
	}
}

func TestSigner(t *testing.T) {
	keys, err := guard.NewRandomKeyring()
	require.NoError(t, err)
	cfg := mutate.DefaultConfig()
	cfg.SidecarImage = "example.com/sidecar:test"
	tokenCfg := cfg
	tokenCfg.SidecarIdentity = mutate.IdentityToken
	good := injected(t, keys, cfg, "apps", "good")
	forged := injected(t, keys, cfg, "apps", "forged")
	forged.Spec.InitContainers[0].Image = "evil"
	tokenPod := injected(t, keys, tokenCfg, "apps", "token-pod")
	elsewhere := injected(t, keys, cfg, "plain", "elsewhere")
	broken := injected(t, keys, cfg, "broken", "lookup")
	kube := fake.NewClientset(good, forged, tokenPod, elsewhere, broken)
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	s := &Signer{Authority: NewAuthority(keys), Kube: kube, Rules: cfg.Rules(keys),
		Namespaces: namespaces{"apps": optedIn, "plain": {}}, Lifetime: 2 * time.Hour, Now: func() time.Time { return now }}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	small, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)

	for _, tc := range []struct {
		name   string
		pcr    *certv1.PodCertificateRequest
		reason string // "" = issued
	}{
		{"the sidecar's request", request(t, good, "r-good", ec), ""},
		{"another uid", func() *certv1.PodCertificateRequest {
			r := request(t, good, "r-uid", ec)
			r.Spec.PodUID = "uid-old"
			return r
		}(), ReasonPodMismatch},
		{"another node", func() *certv1.PodCertificateRequest {
			r := request(t, good, "r-node", ec)
			r.Spec.NodeName = "n2"
			return r
		}(), ReasonPodMismatch},
		{"another service account", func() *certv1.PodCertificateRequest {
			r := request(t, good, "r-sa", ec)
			r.Spec.ServiceAccountName = "admin"
			return r
		}(), ReasonPodMismatch},
		{"a pod that is gone", func() *certv1.PodCertificateRequest {
			r := request(t, good, "r-gone", ec)
			r.Spec.PodName = "gone"
			return r
		}(), ReasonPodGone},
		{"a forged pod", request(t, forged, "r-forged", ec), ReasonNotTrusted},
		{"a namespace not opted in", request(t, elsewhere, "r-plain", ec), ReasonNotTrusted},
		{"a pod injected with token identity", request(t, tokenPod, "r-token", ec), ReasonNotRequested},
		{"a weak key", request(t, good, "r-rsa", small), ReasonUnsupportedKT},
		{"user annotations", func() *certv1.PodCertificateRequest {
			r := request(t, good, "r-annotations", ec)
			r.Spec.UnverifiedUserAnnotations = map[string]string{"example.com/role": "admin"}
			return r
		}(), ReasonUserConfig},
		{"a broken CSR", func() *certv1.PodCertificateRequest {
			r := request(t, good, "r-csr", ec)
			r.Spec.StubPKCS10Request = []byte("junk")
			return r
		}(), ReasonInvalidCSR},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := kube.CertificatesV1().PodCertificateRequests(tc.pcr.Namespace).Create(context.Background(), tc.pcr, metav1.CreateOptions{})
			require.NoError(t, err)
			require.NoError(t, s.Answer(context.Background(), tc.pcr))
			got, err := kube.CertificatesV1().PodCertificateRequests(tc.pcr.Namespace).Get(context.Background(), tc.pcr.Name, metav1.GetOptions{})
			require.NoError(t, err)
			require.Len(t, got.Status.Conditions, 1)
			c := got.Status.Conditions[0]
			assert.Equal(t, metav1.ConditionTrue, c.Status)
			if tc.reason != "" {
				assert.Equal(t, certv1.PodCertificateRequestConditionTypeDenied, c.Type, c.Message)
				assert.Equal(t, tc.reason, c.Reason, c.Message)
				assert.Empty(t, got.Status.CertificateChain)
				return
			}
			assert.Equal(t, certv1.PodCertificateRequestConditionTypeIssued, c.Type, c.Message)
			chain := parseChain(t, got.Status.CertificateChain)
			require.Len(t, chain, 1)
			assert.True(t, chain[0].NotBefore.Equal(got.Status.NotBefore.Time))
			assert.True(t, chain[0].NotAfter.Equal(got.Status.NotAfter.Time))
			assert.Equal(t, 2*time.Hour, chain[0].NotAfter.Sub(chain[0].NotBefore), "the signer's lifetime, under the request's maximum")
			assert.Equal(t, now.Add(time.Hour), got.Status.BeginRefreshAt.Time, "refresh at half-life")
			id, err := s.Authority.Verify(chain, now.Add(time.Minute))
			require.NoError(t, err)
			assert.Equal(t, Identity{Namespace: "apps", ServiceAccount: "svc", Pod: "good", PodUID: "uid-good"}, id)

			// Answered once: a second pass changes nothing.
			require.NoError(t, s.Answer(context.Background(), got))
		})
	}

	// A request capped below the signer's lifetime gets the cap; the kube minimum holds.
	capped := request(t, good, "r-capped", ec)
	capped.Spec.MaxExpirationSeconds = ptr.To[int32](3600)
	_, err = kube.CertificatesV1().PodCertificateRequests("apps").Create(context.Background(), capped, metav1.CreateOptions{})
	require.NoError(t, err)
	require.NoError(t, s.Answer(context.Background(), capped))
	got, err := kube.CertificatesV1().PodCertificateRequests("apps").Get(context.Background(), "r-capped", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, time.Hour, got.Status.NotAfter.Sub(got.Status.NotBefore.Time))

	// A namespace lookup that fails is retried, never answered.
	pending := request(t, broken, "r-pending", ec)
	_, err = kube.CertificatesV1().PodCertificateRequests("broken").Create(context.Background(), pending, metav1.CreateOptions{})
	require.NoError(t, err)
	assert.Error(t, s.Answer(context.Background(), pending))
	got, err = kube.CertificatesV1().PodCertificateRequests("broken").Get(context.Background(), "r-pending", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Empty(t, got.Status.Conditions)

	// Another signer's requests are not Warden's to answer.
	foreign := request(t, good, "r-foreign", ec)
	foreign.Spec.SignerName = "example.com/other"
	require.NoError(t, s.Answer(context.Background(), foreign))
}

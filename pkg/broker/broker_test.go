package broker

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/warden-dev/warden/internal/testing/podfixture"
	"github.com/warden-dev/warden/pkg/admission/mutate"
	"github.com/warden-dev/warden/pkg/brokerapi"
	"github.com/warden-dev/warden/pkg/contract"
	"github.com/warden-dev/warden/pkg/grants"
	"github.com/warden-dev/warden/pkg/guard"
	"github.com/warden-dev/warden/pkg/policy"
)

const testPolicy = `
owners:
  - {serviceAccount: apps/svc, environment: prod}
  - {serviceAccount: plain/svc, environment: prod}
datasets:
  - {id: d1, snapshot: prod/d1, readers: [serviceAccount:apps/svc, user:ann]}
`

type labels map[string]map[string]string

func (l labels) Labels(_ context.Context, ns string) (map[string]string, error) {
	if v, ok := l[ns]; ok {
		return v, nil
	}
	return nil, errors.New("no such namespace")
}

var optedIn = map[string]string{contract.LabelInject: contract.LabelInjectEnabled}

// fixture is a broker over a fake API server that knows some tokens.
type fixture struct {
	srv     *Server
	kube    *fake.Clientset
	tokens  map[string]authnv1.TokenReviewStatus
	reviews int
	keys    *guard.Keyring
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	pol, err := policy.Parse([]byte(testPolicy))
	require.NoError(t, err)
	keys, err := guard.NewRandomKeyring()
	require.NoError(t, err)
	f := &fixture{kube: fake.NewClientset(), tokens: map[string]authnv1.TokenReviewStatus{}, keys: keys}
	f.kube.PrependReactor("create", "tokenreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		f.reviews++
		tr := a.(k8stesting.CreateAction).GetObject().(*authnv1.TokenReview)
		if tr.Spec.Token == "outage" {
			return true, nil, errors.New("connection refused")
		}
		st, ok := f.tokens[tr.Spec.Token]
		if !ok {
			st = authnv1.TokenReviewStatus{Error: "invalid bearer token"}
		}
		return true, &authnv1.TokenReview{Status: st}, nil
	})
	cfg := mutate.DefaultConfig()
	cfg.SidecarImage = "example.com/sidecar:test"
	cfg.SidecarIdentity = mutate.IdentityToken
	f.srv, err = New(Options{
		Kube: f.kube, Grants: grants.NewPolicyEngine(func() policy.View { return pol }),
		Pods: cfg.Rules(keys), Namespaces: labels{"apps": optedIn, "plain": {}}, AcceptTokens: true,
	})
	require.NoError(t, err)
	return f
}

// pod stores a pod in the fake API server, injected by the mutating handler when inject is set,
// and returns a token bound to it.
func (f *fixture) pod(t *testing.T, ns, name string, inject bool, change ...func(*corev1.Pod)) string {
	t.Helper()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, UID: types.UID("uid-" + name)},
		Spec:       corev1.PodSpec{ServiceAccountName: "svc", Containers: []corev1.Container{{Name: "app", Image: "python"}}},
	}
	if inject {
		pol, err := policy.Parse([]byte(testPolicy))
		require.NoError(t, err)
		cfg := mutate.DefaultConfig()
		cfg.SidecarImage = "example.com/sidecar:test"
		h, err := mutate.NewHandler(cfg, "warden-system", staticPolicy{pol}, labels{ns: optedIn}, cfg.Rules(f.keys), nil, nil)
		require.NoError(t, err)
		p, err = podfixture.Inject(h, ns, p)
		require.NoError(t, err)
	}
	for _, c := range change {
		c(p)
	}
	_, err := f.kube.CoreV1().Pods(ns).Create(context.Background(), p, metav1.CreateOptions{})
	require.NoError(t, err)
	tok := "token-" + ns + "-" + name
	f.tokens[tok] = authnv1.TokenReviewStatus{
		Authenticated: true, Audiences: []string{contract.TokenAudience},
		User: authnv1.UserInfo{Username: "system:serviceaccount:" + ns + ":svc", Extra: map[string]authnv1.ExtraValue{
			extraPodName: {name}, extraPodUID: {"uid-" + name},
		}},
	}
	return tok
}

type staticPolicy struct{ p *policy.Policy }

func (s staticPolicy) View() policy.View {
	if s.p == nil {
		return nil
	}
	return s.p
}

func (f *fixture) call(token, path, body string) (int, string) {
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	f.srv.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

func TestBrokerTrust(t *testing.T) {
	f := newFixture(t)
	good := f.pod(t, "apps", "good", true)
	forged := f.pod(t, "apps", "forged", true, func(p *corev1.Pod) { p.Spec.InitContainers[0].Image = "evil" })
	plain := f.pod(t, "plain", "elsewhere", true)
	uninjected := f.pod(t, "apps", "bare", false)
	replaced := f.pod(t, "apps", "replaced", true, func(p *corev1.Pod) { p.UID = "another-uid" })
	otherSA := f.pod(t, "apps", "other-sa", true)
	f.tokens[otherSA] = func() authnv1.TokenReviewStatus {
		st := f.tokens[otherSA]
		st.User.Username = "system:serviceaccount:apps:someone-else"
		return st
	}()
	f.tokens["wrong-audience"] = authnv1.TokenReviewStatus{Authenticated: true, Audiences: []string{"vault"},
		User: authnv1.UserInfo{Username: "system:serviceaccount:apps:svc"}}
	f.tokens["not-pod-bound"] = authnv1.TokenReviewStatus{Authenticated: true, Audiences: []string{contract.TokenAudience},
		User: authnv1.UserInfo{Username: "system:serviceaccount:apps:svc"}}
	f.tokens["a-user"] = authnv1.TokenReviewStatus{Authenticated: true, Audiences: []string{contract.TokenAudience},
		User: authnv1.UserInfo{Username: "ann"}}
	gone := f.pod(t, "apps", "gone", true)
	require.NoError(t, f.kube.CoreV1().Pods("apps").Delete(context.Background(), "gone", metav1.DeleteOptions{}))

	body := `{"dataset":"d1","caller":{"user":"ann"}}`
	for _, tc := range []struct {
		name, token string
		status      int
		msg         string
	}{
		{"injected pod", good, 200, `"can_read":true`},
		{"no token", "", 401, "Authorization: Bearer"},
		{"unknown token", "nope", 401, "not accepted"},
		{"token for another audience", "wrong-audience", 401, "audience"},
		{"token not bound to a pod", "not-pod-bound", 401, "not bound to a pod"},
		{"a user's token", "a-user", 401, "not a service account"},
		{"deleted pod", gone, 401, "no longer exists"},
		{"pod replaced under the same name", replaced, 401, "was replaced"},
		{"token of another service account", otherSA, 401, "runs as"},
		{"namespace not opted in", plain, 403, "not opted in"},
		{"pod Warden did not inject", uninjected, 403, "no warden.dev/status"},
		{"forged injection", forged, 403, "seal"},
		{"TokenReview down", "outage", 503, "token review"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, msg := f.call(tc.token, brokerapi.PathCheck, body)
			assert.Equal(t, tc.status, status, msg)
			assert.Contains(t, msg, tc.msg)
		})
	}
}

func TestBrokerRequests(t *testing.T) {
	f := newFixture(t)
	tok := f.pod(t, "apps", "good", true)
	for _, tc := range []struct {
		name, path, body string
		status           int
		msg              string
	}{
		{"check for a reader", brokerapi.PathCheck, `{"dataset":"d1","caller":{"user":"ann"}}`, 200, `"caller":{"name":"ann","can_read":true},"snapshot":"prod/d1"`},
		{"check for a stranger", brokerapi.PathCheck, `{"dataset":"d1","caller":{"user":"bob"}}`, 200, `"caller":{"name":"bob","can_read":false}`},
		{"check for the owner itself", brokerapi.PathCheck, `{"dataset":"d1","caller":{"service_account":"apps/svc"}}`, 200, `"can_read":true`},
		// A sidecar from before the wire was all snake_case, during a rolling upgrade.
		{"check from an older sidecar", brokerapi.PathCheck, `{"dataset":"d1","caller":{"serviceAccount":"apps/svc"}}`, 200, `"can_read":true`},
		{"list", brokerapi.PathList, `{"caller":{"user":"ann"}}`, 200, `"id":"d1"`},
		{"caller is another service account", brokerapi.PathCheck, `{"dataset":"d1","caller":{"service_account":"apps/other"}}`, 403, "not this pod's owner"},
		{"caller both user and owner", brokerapi.PathCheck, `{"dataset":"d1","caller":{"user":"ann","service_account":"apps/svc"}}`, 400, "not both"},
		{"bad user name", brokerapi.PathCheck, `{"dataset":"d1","caller":{"user":"../ann"}}`, 400, "letters, digits"},
		{"bad group name", brokerapi.PathCheck, `{"dataset":"d1","caller":{"user":"ann","groups":["a b"]}}`, 400, "group"},
		{"unknown field", brokerapi.PathCheck, `{"dataset":"d1","caller":{"user":"ann"},"owner":"apps/admin"}`, 400, "unknown field"},
		{"malformed JSON", brokerapi.PathCheck, `{"dataset":`, 400, "bad request"},
		{"oversized body", brokerapi.PathCheck, `{"dataset":"` + strings.Repeat("x", 70<<10) + `"}`, 413, "payload_too_large"},
		{"no such endpoint", "/v1/nothing", `{}`, 404, "no such endpoint"},
		{"GCP identity off", brokerapi.PathIdentityGCP, `{"org":"o"}`, 501, "--gcp-identity"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, msg := f.call(tok, tc.path, tc.body)
			assert.Equal(t, tc.status, status, msg)
			assert.Contains(t, msg, tc.msg)
		})
	}
}

// A verified token is reused for TokenCacheTTL: one TokenReview for many requests.
func TestTokenCache(t *testing.T) {
	f := newFixture(t)
	tok := f.pod(t, "apps", "good", true)
	for range 5 {
		status, msg := f.call(tok, brokerapi.PathList, `{"caller":{"user":"ann"}}`)
		require.Equal(t, 200, status, msg)
	}
	assert.Equal(t, 1, f.reviews)
}

// A feature the broker runs without refuses before any authentication work: no TokenReview,
// even for a token the API server would reject.
func TestBeginIfFeatureOff(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		path, flag string
	}{
		{brokerapi.PathIdentityOrgs, "--gcp-identity"},
		{brokerapi.PathIdentityGCP, "--gcp-identity"},
		{brokerapi.PathStorageCredentials, "--storage"},
		{brokerapi.PathStorageSignedURL, "--storage"},
		{brokerapi.PathStorageCommit, "--storage"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			status, msg := f.call("nope", tc.path, `{}`)
			assert.Equal(t, 501, status, msg)
			assert.Contains(t, msg, tc.flag)
			assert.Zero(t, f.reviews)
		})
	}
}

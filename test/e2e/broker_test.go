package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	sidecarapp "github.com/warden-dev/warden/cmd/sidecar/app"
	"github.com/warden-dev/warden/pkg/broker"
	"github.com/warden-dev/warden/pkg/brokerapi"
	"github.com/warden-dev/warden/pkg/contract"
	"github.com/warden-dev/warden/pkg/grants"
	"github.com/warden-dev/warden/pkg/policy"
	"github.com/warden-dev/warden/pkg/sidecar"
)

// podToken creates a pod through the API (so the webhook injects it) and a real projected-style
// token for its service account, bound to the pod, with the given audience.
func podToken(t testing.TB, ns, sa, name, audience string) (*corev1.Pod, string) {
	t.Helper()
	pod := newPod("", sa)
	pod.GenerateName = name + "-" // unique, so benchmarks and reruns never collide
	p, err := createPod(t, ns, pod, false)
	require.NoError(t, err)
	return p, token(t, p, audience)
}

func token(t testing.TB, p *corev1.Pod, audience string) string {
	t.Helper()
	tr, err := kube.CoreV1().ServiceAccounts(p.Namespace).CreateToken(ctx(t), p.Spec.ServiceAccountName, &authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{
		Audiences:         []string{audience},
		ExpirationSeconds: ptr.To[int64](600),
		BoundObjectRef:    &authnv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: p.Name, UID: p.UID},
	}}, metav1.CreateOptions{})
	require.NoError(t, err)
	return tr.Status.Token
}

func tlsConfig(t testing.TB) *tls.Config { return &tls.Config{RootCAs: caPool(t)} }

func caPool(t testing.TB) *x509.CertPool {
	ca, err := os.ReadFile(filepath.Join(env.CertDir, "ca.crt"))
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(ca))
	return pool
}

// brokerClient is the sidecar's own client, with a token file.
func brokerClient(t testing.TB, base, tok string, pool *x509.CertPool) *brokerapi.Client {
	f := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(f, []byte(tok), 0o600))
	return &brokerapi.Client{BaseURL: base, TokenFile: f, HTTP: &http.Client{Timeout: 10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}}
}

func TestBrokerAnswersForTheTokensPod(t *testing.T) {
	setup(t)
	_, tok := podToken(t, "apps", "svc-prod-app-1", "brokered", contract.TokenAudience)
	c := brokerClient(t, brokerURL, tok, caPool(t))

	d, err := c.Check(ctx(t), "apps/svc-prod-app-1", grants.Caller{User: "user-ds-1"}, "prod-dataset-1")
	require.NoError(t, err)
	assert.True(t, d.Allowed())
	assert.Equal(t, "prod/dataset-1/rw", d.Snapshot)
	d, err = c.Check(ctx(t), "apps/svc-prod-app-1", grants.Caller{User: "user-ds-2"}, "prod-dataset-1")
	require.NoError(t, err)
	assert.False(t, d.Allowed())
	assert.Empty(t, d.Snapshot, "no location for a refused caller")
	l, err := c.List(ctx(t), "apps/svc-prod-app-1", grants.Caller{ServiceAccount: "apps/svc-prod-app-1"})
	require.NoError(t, err)
	assert.Equal(t, []grants.Dataset{{ID: "prod-dataset-1", Snapshot: "prod/dataset-1/rw"}}, l)

	// The owner is the token's, whatever the sidecar claims to be.
	_, err = c.Check(ctx(t), "apps/someone-else", grants.Caller{User: "user-ds-1"}, "prod-dataset-1")
	assert.ErrorIs(t, err, grants.ErrUnavailable)
	// A pod may not act for another service account.
	_, err = c.Check(ctx(t), "apps/svc-prod-app-1", grants.Caller{ServiceAccount: "ws/user-ds-1"}, "prod-dataset-1")
	assert.ErrorIs(t, err, grants.ErrUnknownOwner)
}

func rawBroker(t *testing.T, tok, body string) (int, string) {
	req, _ := http.NewRequest("POST", brokerURL+brokerapi.PathCheck, strings.NewReader(body))
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	cl := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConfig(t)}}
	resp, err := cl.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestBrokerRefusesOtherTokens(t *testing.T) {
	setup(t)
	ensureServiceAccount(t, "plain", "whoever")
	body := `{"dataset":"prod-dataset-1","caller":{"user":"user-ds-1"}}`

	p, _ := podToken(t, "apps", "svc-prod-app-1", "audience", contract.TokenAudience)
	code, msg := rawBroker(t, token(t, p, "vault"), body)
	assert.Equal(t, 401, code, msg)

	code, msg = rawBroker(t, "", body)
	assert.Equal(t, 401, code, msg)
	code, msg = rawBroker(t, "not-a-token", body)
	assert.Equal(t, 401, code, msg)

	// A token of the right audience that is not bound to a pod.
	tr, err := kube.CoreV1().ServiceAccounts("apps").CreateToken(ctx(t), "svc-prod-app-1", &authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{Audiences: []string{contract.TokenAudience}}}, metav1.CreateOptions{})
	require.NoError(t, err)
	code, msg = rawBroker(t, tr.Status.Token, body)
	assert.Equal(t, 401, code)
	assert.Contains(t, msg, "not bound to a pod")

	// A pod Warden did not inject (its namespace is not opted in).
	plainPod, plainTok := podToken(t, "plain", "whoever", "uninjected", contract.TokenAudience)
	require.NotContains(t, plainPod.Annotations, contract.AnnotationStatus)
	code, msg = rawBroker(t, plainTok, body)
	assert.Equal(t, 403, code)
	assert.Contains(t, msg, "not opted in")

	// A deleted pod: its token stops working.
	gone, goneTok := podToken(t, "apps", "svc-prod-app-1", "deleted", contract.TokenAudience)
	require.NoError(t, kube.CoreV1().Pods("apps").Delete(ctx(t), gone.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}))
	require.Eventually(t, func() bool {
		_, err := kube.CoreV1().Pods("apps").Get(ctx(t), gone.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	}, time.Minute, 100*time.Millisecond)
	code, msg = rawBroker(t, goneTok, body)
	assert.Equal(t, 401, code, msg)

	// Hostile bodies from a valid pod.
	_, tok := podToken(t, "apps", "svc-prod-app-1", "hostile", contract.TokenAudience)
	for _, b := range []string{`{`, `{"dataset":"x","caller":{"user":"../../etc"}}`, `{"dataset":"x","caller":{"user":"u"},"extra":1}`, `{"dataset":"x","caller":{"user":"u","service_account":"apps/svc-prod-app-1"}}`, strings.Repeat("x", 70<<10)} {
		code, _ := rawBroker(t, tok, b)
		assert.Equal(t, 400, code, b)
	}
}

// The whole chain: a sidecar in broker mode, with a real token, stages a file.
func TestSidecarThroughBroker(t *testing.T) {
	setup(t)
	p, tok := podToken(t, "apps", "svc-prod-app-1", "chain", contract.TokenAudience)
	base := t.TempDir()
	snap := filepath.Join(base, "share/prod/dataset-1/rw")
	require.NoError(t, os.MkdirAll(snap, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(snap, "data.csv"), []byte("a,b\n1,2\n"), 0o644))
	tokFile := filepath.Join(base, "token")
	require.NoError(t, os.WriteFile(tokFile, []byte(tok), 0o600))
	ca, err := os.ReadFile(filepath.Join(env.CertDir, "ca.crt"))
	require.NoError(t, err)

	sctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- sidecarapp.Run(sctx, sidecarapp.Options{
			Listen: "127.0.0.1:0", Owner: "apps/svc-prod-app-1", Environment: "prod", Workload: contract.WorkloadApp,
			SnapshotRoot: filepath.Join(base, "share"), StagingRoot: filepath.Join(base, "staging"), StateDir: filepath.Join(base, "state"),
			BrokerURL: brokerURL, BrokerCA: string(ca), TokenFile: tokFile, GrantCacheTTL: time.Second, GrantStaleFor: time.Second,
			AuditLog: filepath.Join(base, "audit.log"), Pod: p.Name,
		}, ready)
	}()
	defer func() { cancel(); require.NoError(t, <-done) }()
	addr := <-ready

	post := func(caller string) (int, map[string]any) {
		req, _ := http.NewRequest("POST", "http://"+addr+"/v1/datasets/prod-dataset-1/stage", strings.NewReader(`{"path":"data.csv"}`))
		req.Header.Set(sidecar.CallerHeader, caller)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		out := map[string]any{}
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	code, out := post("user-ds-1")
	require.Equal(t, 201, code, out)
	data, err := os.ReadFile(filepath.Join(base, "staging/prod/apps.svc-prod-app-1/user=user-ds-1", out["name"].(string)))
	require.NoError(t, err)
	assert.Equal(t, "a,b\n1,2\n", string(data))
	code, _ = post("user-ds-2")
	assert.Equal(t, 403, code)
	audit, _ := os.ReadFile(filepath.Join(base, "audit.log"))
	assert.Contains(t, string(audit), `"pod":"chain-`)
}

// Kubernetes RBAC as the grant source: verb read on datasets.warden.dev. The file's datasets
// are granted cluster-wide (ClusterRoleBindings); a RoleBinding in the owner's namespace, which
// that namespace's admin could make, counts for nothing.
func TestBrokerWithRBACGrants(t *testing.T) {
	setup(t)
	readRule := []rbacv1.PolicyRule{{APIGroups: []string{broker.RBACGroup}, Resources: []string{broker.RBACResource}, Verbs: []string{broker.RBACVerb}, ResourceNames: []string{"prod-dataset-2"}}}
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "e2e-read-prod-dataset-2"}, Rules: readRule}
	_, err := kube.RbacV1().ClusterRoles().Create(ctx(t), role, metav1.CreateOptions{})
	require.NoError(t, err)
	defer kube.RbacV1().ClusterRoles().Delete(context.Background(), role.Name, metav1.DeleteOptions{})
	_, err = kube.RbacV1().ClusterRoleBindings().Create(ctx(t), &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "e2e-read-prod-dataset-2"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role.Name},
		Subjects: []rbacv1.Subject{
			{Kind: "ServiceAccount", Name: "svc-prod-app-1", Namespace: "apps"},
			{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: "user-ds-3"},
			{Kind: "Group", APIGroup: "rbac.authorization.k8s.io", Name: "auditors"},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	defer kube.RbacV1().ClusterRoleBindings().Delete(context.Background(), "e2e-read-prod-dataset-2", metav1.DeleteOptions{})
	// In the owner's namespace: not where the file's datasets are granted.
	local := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "e2e-local-read", Namespace: "apps"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{broker.RBACGroup}, Resources: []string{broker.RBACResource}, Verbs: []string{broker.RBACVerb}}}}
	_, err = kube.RbacV1().Roles("apps").Create(ctx(t), local, metav1.CreateOptions{})
	require.NoError(t, err)
	defer kube.RbacV1().Roles("apps").Delete(context.Background(), local.Name, metav1.DeleteOptions{})
	_, err = kube.RbacV1().RoleBindings("apps").Create(ctx(t), &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "e2e-local-read", Namespace: "apps"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: local.Name},
		Subjects:   []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: "user-ds-1"}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	defer kube.RbacV1().RoleBindings("apps").Delete(context.Background(), "e2e-local-read", metav1.DeleteOptions{})

	pol, err := policy.Parse([]byte(strings.Replace(initialPolicy, "datasets:\n", `datasets:
  - {id: prod-dataset-2, snapshot: prod/dataset-2/rw, environments: [prod], readers: []}
  - {id: dev-dataset-9, snapshot: dev/9, environments: [dev], readers: []}
`, 1)))
	require.NoError(t, err)
	engine := &grants.Engine{Policy: func() policy.View { return pol }, Authz: &broker.RBACAuthorizer{SAR: kube.AuthorizationV1().SubjectAccessReviews(), TTL: time.Second}}
	b, err := broker.New(broker.Options{Kube: kube, Grants: engine, Pods: server.PodRules(), Namespaces: namespaceLabels{}, AcceptTokens: true})
	require.NoError(t, err)
	srv := httptest.NewTLSServer(b)
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	_, tok := podToken(t, "apps", "svc-prod-app-1", "rbac", contract.TokenAudience)
	c := brokerClient(t, srv.URL, tok, pool)

	for _, tc := range []struct {
		caller  grants.Caller
		dataset string
		owner   bool
		allowed bool
	}{
		{grants.Caller{User: "user-ds-3"}, "prod-dataset-2", true, true},
		{grants.Caller{User: "user-ds-1"}, "prod-dataset-2", true, false}, // a Role in apps does not count
		{grants.Caller{User: "someone", Groups: []string{"auditors"}}, "prod-dataset-2", true, true},
		{grants.Caller{ServiceAccount: "apps/svc-prod-app-1"}, "prod-dataset-2", true, true},
		{grants.Caller{User: "user-ds-3"}, "prod-dataset-1", false, false}, // no role for it
		{grants.Caller{User: "user-ds-3"}, "dev-dataset-9", false, false},  // wrong environment
	} {
		d, err := c.Check(ctx(t), "apps/svc-prod-app-1", tc.caller, tc.dataset)
		require.NoError(t, err)
		assert.Equal(t, tc.owner, d.Owner.CanRead, "%+v", tc)
		assert.Equal(t, tc.allowed, d.Allowed(), "%+v", tc)
	}
	// Kubernetes' own identities are never callers: their names are refused before any review.
	for _, caller := range []grants.Caller{{User: "intruder", Groups: []string{"system:masters"}}, {User: "system:admin"}} {
		_, err := c.Check(ctx(t), "apps/svc-prod-app-1", caller, "prod-dataset-2")
		require.Error(t, err, "%+v", caller)
		assert.Contains(t, err.Error(), "400", "%+v", caller)
	}
}

// namespaceLabels reads namespace labels straight from the API server.
type namespaceLabels struct{}

func (namespaceLabels) Labels(ctx context.Context, name string) (map[string]string, error) {
	ns, err := kube.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return ns.Labels, nil
}

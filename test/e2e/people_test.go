package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authnv1 "k8s.io/api/authentication/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sidecarapp "github.com/warden-dev/warden/cmd/sidecar/app"
	"github.com/warden-dev/warden/pkg/cli"
)

// A person outside any pod: a service account of namespace "people" stands in for a laptop's
// OIDC login (both are bearer tokens the API server vouches for), with a kubeconfig as kubectl
// would use it.
func person(t testing.TB, name string) (kubeconfig string) {
	t.Helper()
	return writeKubeconfig(t, personToken(t, name))
}

// personToken is the bearer token of person name (`kubectl create token`, the API server's
// audience).
func personToken(t testing.TB, name string) string {
	t.Helper()
	ensureNamespace(t, "people", false)
	ensureServiceAccount(t, "people", name)
	tr, err := kube.CoreV1().ServiceAccounts("people").CreateToken(ctx(t), name, &authnv1.TokenRequest{}, metav1.CreateOptions{})
	require.NoError(t, err)
	return tr.Status.Token
}

func writeKubeconfig(t testing.TB, token string) string {
	t.Helper()
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.crt")
	require.NoError(t, os.WriteFile(ca, env.Config.CAData, 0o600))
	file := filepath.Join(dir, "kubeconfig")
	require.NoError(t, os.WriteFile(file, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: e2e, cluster: {server: %q, certificate-authority: %q}}]
users: [{name: me, user: {token: %q}}]
contexts: [{name: e2e, context: {cluster: e2e, user: me}}]
current-context: e2e
`, env.Config.Host, ca, token)), 0o600))
	return file
}

// warden runs the CLI against the e2e broker with a kubeconfig; stdin feeds --set.
func warden(t testing.TB, kubeconfig, stdin string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	full := append([]string{args[0], "--broker", brokerURL, "--broker-ca", filepath.Join(env.CertDir, "ca.crt"), "--kubeconfig", kubeconfig}, args[1:]...)
	err := cli.Run(full, strings.NewReader(stdin), &out, &errOut)
	return out.String(), err
}

func bindOwnerSecrets(t testing.TB, ns, name, clusterRole, sa string) {
	t.Helper()
	_, err := kube.RbacV1().RoleBindings(ns).Create(ctx(t), &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: clusterRole},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: "people"}}}, metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		require.NoError(t, err)
	}
}

// The VDK seed's data-job owner manages its job's secrets from a laptop: `warden secrets
// --owner` through the broker with the kubeconfig's token, RBAC on owners/secrets deciding, the
// very entry the job's sidecar reads, values of any JSON type, and the seed's delete-all.
func TestSecretsFromOutsideAPod(t *testing.T) {
	setup(t)
	const owner = "apps/svc-prod-app-1"
	dana := person(t, "dana")
	_, err := warden(t, dana, "", "secrets", "--owner", owner, "--list")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "system:serviceaccount:people:dana may not get secrets of owner apps/svc-prod-app-1")
	assert.Contains(t, err.Error(), "(403)")

	bindOwnerSecrets(t, "apps", "dana-owner-secrets", "warden-owner-secrets", "dana")
	_, err = warden(t, dana, "hunter2\n", "secrets", "--owner", owner, "--set", "db-password")
	require.NoError(t, err)
	_, err = warden(t, dana, "5432\n", "secrets", "--owner", owner, "--set", "db-port", "--json")
	require.NoError(t, err)
	_, err = warden(t, dana, "{nope\n", "secrets", "--owner", owner, "--set", "bad", "--json")
	assert.ErrorContains(t, err, "not JSON")
	out, err := warden(t, dana, "", "secrets", "--owner", owner, "--list", "--show-secrets")
	require.NoError(t, err)
	assert.Contains(t, out, "db-password=hunter2\n")
	assert.Contains(t, out, "db-port=5432\n")

	// The job's own sidecar reads the same entry, with the number still a number.
	// (No cache, so the delete-all below shows at once; a cached sidecar sees it within its
	// --vault-cache-ttl.)
	sc := startSidecar(t, "apps", "svc-prod-app-1", "secrets-outside", func(o *sidecarapp.Options) { o.VaultCacheTTL = 0 })
	code, _, all := sc.call(t, "GET", "/v1/secrets?all=true", "", nil)
	require.Equal(t, 200, code, all)
	assert.Equal(t, "hunter2", all["db-password"])
	assert.Equal(t, 5432.0, all["db-port"])

	// Another owner's namespace is not covered by the binding; an owner that does not exist is
	// told apart only to people RBAC lets ask.
	_, err = warden(t, dana, "", "secrets", "--owner", "ws/user-ds-1", "--list")
	assert.ErrorContains(t, err, "may not get secrets of owner ws/user-ds-1")
	_, err = warden(t, dana, "", "secrets", "--owner", "apps/nobody", "--list")
	assert.ErrorContains(t, err, "apps/nobody is not an owner in the policy (404)")

	// Through the built-in edit role, aggregated as the cluster would.
	erin := person(t, "erin")
	bindOwnerSecrets(t, "apps", "erin-edit", "edit", "erin")
	aggregateClusterRoles(t)
	out, err = warden(t, erin, "", "secrets", "--owner", owner, "--get", "db-port")
	require.NoError(t, err)
	assert.Equal(t, "5432\n", out)

	_, err = warden(t, dana, "", "secrets", "--owner", owner, "--delete-all")
	require.NoError(t, err)
	out, err = warden(t, dana, "", "secrets", "--owner", owner, "--list")
	require.NoError(t, err)
	assert.Empty(t, out)
	code, _, all = sc.call(t, "GET", "/v1/secrets?all=true", "", nil)
	require.Equal(t, 200, code)
	assert.Empty(t, all, "deleted for the job too")
}

// Hostile and broken requests to the broker's people API, straight over HTTP.
func TestSecretsFromOutsideRefusals(t *testing.T) {
	setup(t)
	token := personToken(t, "dana")
	bindOwnerSecrets(t, "apps", "dana-owner-secrets", "warden-owner-secrets", "dana")
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConfig(t)}}
	for _, tc := range []struct {
		name, method, path, token, body string
		status                          int
		msg                             string
	}{
		{"no token", "GET", "/v1/owners/apps/svc-prod-app-1/secrets", "", "", 401, "bearer token"},
		{"a forged token", "GET", "/v1/owners/apps/svc-prod-app-1/secrets", "not-a-token", "", 401, "token not accepted"},
		{"a bad owner name", "GET", "/v1/owners/apps/Svc_1/secrets", token, "", 400, "owner"},
		{"a traversal in the key", "GET", "/v1/owners/apps/svc-prod-app-1/secrets/..%2F..%2Fx", token, "", 400, "bad secret key"},
		{"malformed JSON", "PUT", "/v1/owners/apps/svc-prod-app-1/secrets", token, `{"a":`, 400, "JSON object of secrets"},
		{"null", "PUT", "/v1/owners/apps/svc-prod-app-1/secrets", token, `null`, 400, "got null"},
		{"oversized", "PUT", "/v1/owners/apps/svc-prod-app-1/secrets", token, `{"a":"` + strings.Repeat("x", 2<<20) + `"}`, 413, "limit"},
		{"a bad If-Match", "DELETE", "/v1/owners/apps/svc-prod-app-1/secrets", token, "", 400, "If-Match"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, brokerURL+tc.path, strings.NewReader(tc.body))
			require.NoError(t, err)
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			if tc.name == "a bad If-Match" {
				req.Header.Set("If-Match", "yesterday")
			}
			resp, err := client.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			var b bytes.Buffer
			_, _ = b.ReadFrom(resp.Body)
			assert.Equal(t, tc.status, resp.StatusCode, b.String())
			assert.Contains(t, b.String(), tc.msg)
		})
	}
}

// "What may I do" (the Nebari seed): for a pod's owner and caller together through the sidecar,
// for a person with their token, and for a named user by an admin; filtered by permission.
func TestWhatMayIDo(t *testing.T) {
	setup(t)
	sc := startSidecar(t, "apps", "svc-prod-app-1", "access", brokered)
	code, out := sc.callAs(t, "GET", "/v1/access", "user-ds-1", nil)
	require.Equal(t, 200, code, out)
	assert.Equal(t, []any{"serviceAccount:apps/svc-prod-app-1", "user:user-ds-1"}, out["subjects"])
	assert.Equal(t, []any{map[string]any{"id": "prod-dataset-1", "permissions": []any{"read"}}}, out["datasets"])
	assert.Equal(t, []any{map[string]any{"name": "org1", "gcp_service_account": "aes1-svc@my-project.iam.gserviceaccount.com", "permissions": []any{"assume"}}}, out["orgs"])
	assert.Equal(t, []any{
		map[string]any{"org": "org1", "space": "loadingzone", "role": "supplier", "permissions": []any{"read", "upload", "delete"}},
		map[string]any{"org": "org1", "space": "archive", "role": "trustee", "permissions": []any{"read", "upload/main", "delete"}},
	}, out["spaces"], "curated: user-ds-1 has org access but no role there")

	code, out = sc.callAs(t, "GET", "/v1/access?permission=upload%2Fmain", "user-ds-1", nil)
	require.Equal(t, 200, code, out)
	assert.Empty(t, out["datasets"])
	assert.Empty(t, out["orgs"])
	assert.Len(t, out["spaces"], 1)
	code, out = sc.callAs(t, "GET", "/v1/access?permission=everything", "", nil)
	assert.Equal(t, 400, code, out)

	// A person from outside: a service account's token stands for that service account.
	dana := person(t, "dana")
	got, err := warden(t, dana, "", "access", "--json")
	require.NoError(t, err)
	assert.Contains(t, got, `"serviceAccount:people/dana"`)
	assert.Contains(t, got, `"datasets": []`, "the policy gives people/dana nothing")
	_, err = warden(t, dana, "", "access", "--user", "user-ds-2")
	assert.ErrorContains(t, err, "may not get accesses/user-ds-2")

	// An admin asks for someone else.
	frank := person(t, "frank")
	_, err = kube.RbacV1().ClusterRoleBindings().Create(ctx(t), &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "e2e-frank-warden-admin"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "warden-admin"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "frank", Namespace: "people"}}}, metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		require.NoError(t, err)
	}
	got, err = warden(t, frank, "", "access", "--user", "user-ds-2")
	require.NoError(t, err)
	assert.Equal(t, "for user:user-ds-2\nspace org1/curated, role user: read\nspace org1/archive, role user: read\n", got)
	got, err = warden(t, frank, "", "access", "--user", "user-ds-2", "--permission", "delete")
	require.NoError(t, err)
	assert.Equal(t, "for user:user-ds-2\n", got)
}

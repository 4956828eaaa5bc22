package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	sidecarapp "github.com/warden-dev/warden/cmd/sidecar/app"
	"github.com/warden-dev/warden/pkg/brokerapi"
	"github.com/warden-dev/warden/pkg/identity"
)

// brokered runs the sidecar against the webhook's broker instead of a local policy.
func brokered(o *sidecarapp.Options) {
	o.PolicyFile = ""
	o.BrokerURL = brokerURL
	o.BrokerCA = filepath.Join(env.CertDir, "ca.crt")
}

func ksaAnnotation(t testing.TB, ns, ksa string) string {
	sa, err := kube.CoreV1().ServiceAccounts(ns).Get(ctx(t), ksa, metav1.GetOptions{})
	require.NoError(t, err)
	return sa.Annotations[identity.AnnotationGSA]
}

func TestIdentityBindSwitchReset(t *testing.T) {
	setup(t)
	const (
		owner = "apps/svc-prod-app-1"
		gsa1  = "aes1-svc@my-project.iam.gserviceaccount.com"
		gsa2  = "aes2-svc@my-project.iam.gserviceaccount.com"
	)
	member := identity.Member("my-project", "apps", "svc-prod-app-1")
	sc := startSidecar(t, "apps", "svc-prod-app-1", "identity", brokered)

	code, _, out := sc.call(t, "GET", "/v1/identity/orgs", "", nil)
	require.Equal(t, 200, code, out)
	assert.Len(t, out["orgs"], 2)

	code, _, out = sc.call(t, "POST", "/v1/identity/gcp", "", map[string]string{"org": "org1"})
	require.Equal(t, 200, code, out)
	assert.Equal(t, "org1", out["org"])
	assert.Equal(t, gsa1, out["gcp_service_account"])
	assert.Equal(t, "pending", out["state"], "IAM needs minutes to propagate")
	assert.NotEmpty(t, out["written_at"])
	assert.Equal(t, gsa1, ksaAnnotation(t, "apps", "svc-prod-app-1"))
	assert.Contains(t, fakeIAM.Members(gsa1, identity.Role), member)
	writes := fakeIAM.Writes(gsa1)

	require.Eventually(t, func() bool {
		code, _, out := sc.call(t, "POST", "/v1/identity/gcp", "", map[string]string{"org": "org1"})
		return code == 200 && out["state"] == "bound"
	}, 30*time.Second, 200*time.Millisecond)
	assert.Equal(t, writes, fakeIAM.Writes(gsa1), "binding again writes nothing to IAM")

	// Switch orgs: the new binding, the annotation, and the old binding gone.
	code, _, out = sc.call(t, "POST", "/v1/identity/gcp", "", map[string]string{"org": "org2"})
	require.Equal(t, 200, code, out)
	assert.Equal(t, gsa2, ksaAnnotation(t, "apps", "svc-prod-app-1"))
	assert.Contains(t, fakeIAM.Members(gsa2, identity.Role), member)
	assert.NotContains(t, fakeIAM.Members(gsa1, identity.Role), member)

	// Not a member of org3; nothing changes.
	code, _, out = sc.call(t, "POST", "/v1/identity/gcp", "", map[string]string{"org": "org3"})
	assert.Equal(t, 403, code, out)
	assert.Equal(t, gsa2, ksaAnnotation(t, "apps", "svc-prod-app-1"))
	code, _, _ = sc.call(t, "POST", "/v1/identity/gcp", "", map[string]string{"org": "no-such-org"})
	assert.Equal(t, 404, code)
	code, _, _ = sc.call(t, "POST", "/v1/identity/gcp", "", []byte(`{"org":"org1","project":"x"}`))
	assert.Equal(t, 400, code, "unknown fields refused")

	code, _, _ = sc.call(t, "DELETE", "/v1/identity/gcp", "", nil)
	require.Equal(t, 204, code)
	assert.Empty(t, ksaAnnotation(t, "apps", "svc-prod-app-1"))
	assert.NotContains(t, fakeIAM.Members(gsa2, identity.Role), member)
	code, _, _ = sc.call(t, "DELETE", "/v1/identity/gcp", "", nil)
	assert.Equal(t, 204, code, "reset is idempotent")

	// An empty org is the one used last (the seed's pre-run call).
	code, _, out = sc.call(t, "POST", "/v1/identity/gcp", "", map[string]string{"org": ""})
	require.Equal(t, 200, code, out)
	assert.Equal(t, "org2", out["org"])
	code, _, _ = sc.call(t, "DELETE", "/v1/identity/gcp", "", nil)
	require.Equal(t, 204, code)
}

// Org members who are people (the seed's users who belong to orgs): the owner and the caller
// must both be members, the caller directly or through a group; a caller who is not is refused
// and nothing changes.
func TestIdentityCallerMustBeOrgMember(t *testing.T) {
	setup(t)
	const gsa1, gsa2 = "aes1-svc@my-project.iam.gserviceaccount.com", "aes2-svc@my-project.iam.gserviceaccount.com"
	member := identity.Member("my-project", "apps", "svc-prod-app-1")
	sc := startSidecar(t, "apps", "svc-prod-app-1", "identity-callers", brokered)
	t.Cleanup(func() { sc.call(t, "DELETE", "/v1/identity/gcp", "", nil) })

	code, out := sc.callAs(t, "GET", "/v1/identity/orgs", "user-ds-1", nil)
	require.Equal(t, 200, code, out)
	assert.Equal(t, []any{map[string]any{"name": "org1", "gcp_service_account": gsa1}}, out["orgs"], "user-ds-1 is in org1 only")
	code, out = sc.callAs(t, "GET", "/v1/identity/orgs", "user-ds-3", nil)
	require.Equal(t, 200, code, out)
	assert.Equal(t, []any{map[string]any{"name": "org2", "gcp_service_account": gsa2}}, out["orgs"], "user-ds-3 is in org2 through its group")
	code, out = sc.callAs(t, "GET", "/v1/identity/orgs", "user-ds-9", nil)
	require.Equal(t, 200, code, out)
	assert.Empty(t, out["orgs"])

	code, out = sc.callAs(t, "POST", "/v1/identity/gcp", "user-ds-1", map[string]string{"org": "org1"})
	require.Equal(t, 200, code, out)
	assert.Contains(t, fakeIAM.Members(gsa1, identity.Role), member)
	code, out = sc.callAs(t, "POST", "/v1/identity/gcp", "user-ds-3", map[string]string{"org": "org2"})
	require.Equal(t, 200, code, out)
	assert.Equal(t, gsa2, ksaAnnotation(t, "apps", "svc-prod-app-1"))

	for _, tc := range []struct{ name, caller, org, want string }{
		{"a caller in no org", "user-ds-9", "org1", "user:user-ds-9 is not a member of org \"org1\""},
		{"a member of another org", "user-ds-1", "org2", "user:user-ds-1 is not a member of org \"org2\""},
		{"a group member, another org", "user-ds-3", "org1", "user:user-ds-3 is not a member of org \"org1\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			writes := fakeIAM.Writes(gsa1) + fakeIAM.Writes(gsa2)
			code, out := sc.callAs(t, "POST", "/v1/identity/gcp", tc.caller, map[string]string{"org": tc.org})
			assert.Equal(t, 403, code, out)
			assert.Contains(t, out["error"], tc.want)
			assert.Equal(t, writes, fakeIAM.Writes(gsa1)+fakeIAM.Writes(gsa2), "nothing written to IAM")
			assert.Equal(t, gsa2, ksaAnnotation(t, "apps", "svc-prod-app-1"), "the binding stays")
		})
	}
	code, out = sc.callAs(t, "POST", "/v1/identity/gcp", "", []byte(`{"org":"org1","caller":{"user":"user-ds-1"}}`))
	assert.Equal(t, 400, code, out)
	assert.Contains(t, out["error"], "not from the body")
}

func TestIdentityNeedsTheBroker(t *testing.T) {
	setup(t)
	sc := startSidecar(t, "apps", "svc-prod-app-1", "identity-local", nil)
	code, _, out := sc.call(t, "POST", "/v1/identity/gcp", "", map[string]string{"org": "org1"})
	assert.Equal(t, 501, code)
	assert.Contains(t, out["error"], "--broker-url")
}

func TestIdentityIAMDown(t *testing.T) {
	setup(t)
	ensureServiceAccount(t, "apps", "svc-ephemeral")
	sc := startSidecar(t, "apps", "svc-ephemeral", "iam-down", brokered)
	fakeIAM.SetDown(true)
	defer fakeIAM.SetDown(false)
	code, _, out := sc.call(t, "POST", "/v1/identity/gcp", "", map[string]string{"org": "org1"})
	assert.Equal(t, 503, code, out)
	assert.Contains(t, out["error"], "unavailable")
	assert.Empty(t, ksaAnnotation(t, "apps", "svc-ephemeral"), "no annotation without a binding")
	fakeIAM.SetDown(false)
	code, _, _ = sc.call(t, "DELETE", "/v1/identity/gcp", "", nil)
	assert.Equal(t, 204, code)
}

// When the last pod of a bound service account is deleted, the reconciler removes the binding
// and the annotation.
func TestIdentityReconcilerUnbindsWhenPodsGo(t *testing.T) {
	setup(t)
	ensureServiceAccount(t, "apps", "svc-ephemeral")
	const gsa1 = "aes1-svc@my-project.iam.gserviceaccount.com"
	member := identity.Member("my-project", "apps", "svc-ephemeral")
	sc := startSidecar(t, "apps", "svc-ephemeral", "short-lived", brokered)
	code, _, out := sc.call(t, "POST", "/v1/identity/gcp", "", map[string]string{"org": "org1"})
	require.Equal(t, 200, code, out)
	require.Contains(t, fakeIAM.Members(gsa1, identity.Role), member)

	pods, err := kube.CoreV1().Pods("apps").List(ctx(t), metav1.ListOptions{FieldSelector: "spec.serviceAccountName=svc-ephemeral"})
	require.NoError(t, err)
	for _, p := range pods.Items {
		require.NoError(t, kube.CoreV1().Pods("apps").Delete(ctx(t), p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}))
	}
	require.Eventually(t, func() bool {
		return !contains(fakeIAM.Members(gsa1, identity.Role), member) && ksaAnnotation(t, "apps", "svc-ephemeral") == ""
	}, time.Minute, 200*time.Millisecond, "binding and annotation removed after the last pod went")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Only members of the admin group may point an org at another GCP service account; the change
// lands in the policy ConfigMap, comments and all.
func TestIdentityAdminChangesOrgMapping(t *testing.T) {
	setup(t)
	ensureNamespace(t, "warden-admins", false)
	ensureServiceAccount(t, "warden-admins", "alice")
	_, err := kube.CoreV1().ConfigMaps("warden-system").Create(ctx(t), &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "warden-policy", Namespace: "warden-system"},
		Data:       map[string]string{"policy.yaml": "# managed by the platform team\n" + initialPolicy},
	}, metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		require.NoError(t, err)
	}
	adminTok := plainToken(t, "warden-admins", "alice")
	userTok := plainToken(t, "apps", "svc-prod-app-1")
	var answer brokerapi.OrgMapping
	put := func(tok, org, body string) int {
		req, _ := http.NewRequest("PUT", brokerURL+"/v1/admin/orgs/"+org, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfig(t)}}).Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&answer))
		}
		return resp.StatusCode
	}
	assert.Equal(t, 403, put(userTok, "org3", `{"gcp_service_account":"aes1-svc@my-project.iam.gserviceaccount.com"}`))
	assert.Equal(t, 401, put("garbage", "org3", `{"gcp_service_account":"aes1-svc@my-project.iam.gserviceaccount.com"}`))
	assert.Equal(t, 422, put(adminTok, "org3", `{"gcp_service_account":"not-an-email"}`))
	assert.Equal(t, 404, put(adminTok, "org9", `{"gcp_service_account":"aes1-svc@my-project.iam.gserviceaccount.com"}`))
	assert.Equal(t, 200, put(adminTok, "org3", `{"gcp_service_account":"aes9-svc@my-project.iam.gserviceaccount.com"}`))
	assert.Equal(t, brokerapi.OrgMapping{Org: "org3", Previous: "aes3-svc@my-project.iam.gserviceaccount.com",
		GCPServiceAccount: "aes9-svc@my-project.iam.gserviceaccount.com"}, answer, "the answer names the account it replaced")
	cm, err := kube.CoreV1().ConfigMaps("warden-system").Get(ctx(t), "warden-policy", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Contains(t, cm.Data["policy.yaml"], "aes9-svc@my-project.iam.gserviceaccount.com")
	assert.Contains(t, cm.Data["policy.yaml"], "# managed by the platform team")
}

func plainToken(t testing.TB, ns, sa string) string {
	tr, err := kube.CoreV1().ServiceAccounts(ns).CreateToken(context.Background(), sa, &authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](600)}}, metav1.CreateOptions{})
	require.NoError(t, err)
	return tr.Status.Token
}

// Half state (here made by hand: the IAM member removed outside Warden, the annotation lost) is
// repaired by the next bind.
func TestIdentityBindRepairsHalfState(t *testing.T) {
	setup(t)
	const gsa1 = "aes1-svc@my-project.iam.gserviceaccount.com"
	member := identity.Member("my-project", "apps", "svc-prod-app-1")
	sc := startSidecar(t, "apps", "svc-prod-app-1", "repair", brokered)
	code, _, out := sc.call(t, "POST", "/v1/identity/gcp", "", map[string]string{"org": "org1"})
	require.Equal(t, 200, code, out)

	pol := fakeIAM.Policy(gsa1)
	pol.Bindings = nil
	fakeIAM.Replace(gsa1, pol)
	_, err := kube.CoreV1().ServiceAccounts("apps").Patch(ctx(t), "svc-prod-app-1", "application/merge-patch+json",
		[]byte(`{"metadata":{"annotations":{"iam.gke.io/gcp-service-account":null}}}`), metav1.PatchOptions{})
	require.NoError(t, err)

	code, _, out = sc.call(t, "POST", "/v1/identity/gcp", "", map[string]string{"org": "org1"})
	require.Equal(t, 200, code, out)
	assert.Contains(t, fakeIAM.Members(gsa1, identity.Role), member)
	assert.Equal(t, gsa1, ksaAnnotation(t, "apps", "svc-prod-app-1"))
	code, _, _ = sc.call(t, "DELETE", "/v1/identity/gcp", "", nil)
	require.Equal(t, 204, code)
}

// Bindings follow the policy while their pods run: an org remapped to another GCP service
// account moves its members' bindings there, and an owner taken out of the org is unbound.
func TestIdentityBindingsFollowPolicy(t *testing.T) {
	setup(t)
	t.Cleanup(func() { writePolicy(t, initialPolicy) })
	const (
		owner   = "apps/svc-prod-app-1"
		org2GSA = "gcpServiceAccount: aes2-svc@my-project.iam.gserviceaccount.com"
	)
	gsa2, gsa3 := orgGSAs[1], orgGSAs[2]
	member := identity.Member("my-project", "apps", "svc-prod-app-1")
	sc := startSidecar(t, "apps", "svc-prod-app-1", "follow-policy", brokered)
	t.Cleanup(func() { sc.call(t, "DELETE", "/v1/identity/gcp", "", nil) })
	code, _, out := sc.call(t, "POST", "/v1/identity/gcp", "", map[string]string{"org": "org2"})
	require.Equal(t, 200, code, out)
	require.Contains(t, fakeIAM.Members(gsa2, identity.Role), member)
	require.Equal(t, gsa2, ksaAnnotation(t, "apps", "svc-prod-app-1"))

	require.Contains(t, initialPolicy, org2GSA)
	remapped := strings.Replace(initialPolicy, org2GSA, "gcpServiceAccount: "+gsa3, 1)
	writePolicy(t, remapped)
	require.Eventually(t, func() bool {
		return contains(fakeIAM.Members(gsa3, identity.Role), member) && !contains(fakeIAM.Members(gsa2, identity.Role), member) &&
			ksaAnnotation(t, "apps", "svc-prod-app-1") == gsa3
	}, time.Minute, 200*time.Millisecond, "%s's binding moved with org2 to %s", owner, gsa3)
	code, _, out = sc.call(t, "POST", "/v1/identity/gcp", "", map[string]string{"org": "org2"})
	require.Equal(t, 200, code, out)
	assert.Equal(t, gsa3, out["gcp_service_account"], "a bind agrees with the move")

	const members = "members: [serviceAccount:apps/svc-prod-app-1, group:org2-analysts]"
	require.Contains(t, remapped, members)
	writePolicy(t, strings.Replace(remapped, members, "members: [group:org2-analysts]", 1))
	require.Eventually(t, func() bool {
		return !contains(fakeIAM.Members(gsa3, identity.Role), member) && !contains(fakeIAM.Members(gsa2, identity.Role), member) &&
			ksaAnnotation(t, "apps", "svc-prod-app-1") == ""
	}, time.Minute, 200*time.Millisecond, "%s unbound once it left org2", owner)
	code, _, out = sc.call(t, "POST", "/v1/identity/gcp", "", map[string]string{"org": "org2"})
	assert.Equal(t, 403, code, out)
}

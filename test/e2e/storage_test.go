package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	gcs "cloud.google.com/go/storage"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"google.golang.org/api/option"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/warden-dev/warden/internal/testing/fakecreds"
	"github.com/warden-dev/warden/internal/testing/testgcp"
	wardenv1 "github.com/warden-dev/warden/pkg/apis/warden/v1alpha1"
	"github.com/warden-dev/warden/pkg/brokerapi"
	"github.com/warden-dev/warden/pkg/cloudstorage"
)

// storageOptions point the broker's storage service at the in-process Google services, through
// the same clients production uses.
func storageOptions(g *testgcp.Env) *cloudstorage.Options {
	return &cloudstorage.Options{
		IAM:        g.IAM,
		Downscoper: cloudstorage.STS{Endpoint: g.STSEndpoint()},
		Lister:     cloudstorage.GCS{Endpoint: g.GCSEndpoint()},
		Publisher:  cloudstorage.PubSub{Endpoint: g.PubSubEndpoint(), Insecure: true},
		// Signed URLs name fake-gcs-server's host, over plain HTTP.
		SignedURLHost: g.GCSHost(), SignedURLInsecure: true,
	}
}

// storageCall posts to a sidecar's storage endpoint as caller ("" for the owner).
func storageCall(t testing.TB, sc *runningSidecar, path, caller string, body any) (int, map[string]any) {
	t.Helper()
	return sc.callAs(t, http.MethodPost, path, caller, body)
}

// appStorageClient is what app code does with a credential: Google's own client with the token.
func appStorageClient(t testing.TB, token string) *gcs.Client {
	t.Helper()
	c, err := gcs.NewClient(context.Background(), option.WithEndpoint(gcp.GCSEndpoint()),
		option.WithTokenSource(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: token})))
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

func TestStorageUploadCommitFlow(t *testing.T) {
	setup(t)
	// Other tests (the Python client's) may have created the topic already.
	if err := gcp.CreateTopic(ctx(t), "my-project", "org1-commits"); status.Code(err) != codes.AlreadyExists {
		require.NoError(t, err)
	}
	gcp.GCS.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: "org1-landing"})
	gcp.GCS.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: "org1-data"})
	sc := startSidecar(t, "apps", "svc-prod-app-1", "storage-flow", brokered)
	published := len(gcp.PubSub.Messages())

	// 1. Upload credentials for the loading zone, and what they really reach.
	code, cred := storageCall(t, sc, brokerapi.PathStorageCredentials, "", map[string]string{"org": "org1", "space": "loadingzone", "access": "upload"})
	require.Equal(t, 200, code, cred)
	tok := cred["access_token"].(string)
	assert.Equal(t, "org1-landing", cred["bucket"])
	assert.Equal(t, "incoming/", cred["prefix"])
	issued, ok := gcp.STS.Boundary(tok)
	require.True(t, ok, "a downscoped token, from STS")
	assert.Equal(t, "aes1-svc@my-project.iam.gserviceaccount.com", issued.Account)
	assert.Equal(t, "//storage.googleapis.com/projects/_/buckets/org1-landing", issued.Rules[0].Resource)
	assert.Equal(t, []string{"inRole:roles/storage.objectViewer", "inRole:roles/storage.objectCreator"}, issued.Rules[0].Permissions)
	assert.Contains(t, issued.Rules[0].Expression, "objects/incoming/")
	expires, err := time.Parse(time.RFC3339, cred["expires_at"].(string))
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now().Add(30*time.Minute), expires, time.Minute)

	// The cache: asking again costs no IAM call and gives the same token.
	mints := gcp.Creds.Calls(fakecreds.MethodGenerateAccessToken)
	_, again := storageCall(t, sc, brokerapi.PathStorageCredentials, "", map[string]string{"org": "org1", "space": "loadingzone", "access": "upload"})
	assert.Equal(t, tok, again["access_token"])
	assert.Equal(t, mints, gcp.Creds.Calls(fakecreds.MethodGenerateAccessToken))

	// 2. App code uploads with Google's client and the token.
	app := appStorageClient(t, tok)
	for _, name := range []string{"incoming/batch-7/a.csv", "incoming/batch-7/sub/b.csv"} {
		w := app.Bucket("org1-landing").Object(name).NewWriter(context.Background())
		_, err := io.WriteString(w, "id,value\n1,"+name+"\n")
		require.NoError(t, err)
		require.NoError(t, w.Close())
	}
	// 3. And one file through a signed URL, with plain HTTP.
	code, signed := storageCall(t, sc, brokerapi.PathStorageSignedURL, "user-ds-1", map[string]string{"org": "org1", "space": "loadingzone", "object": "batch-7/c.csv", "method": "PUT"})
	require.Equal(t, 200, code, signed)
	req, _ := http.NewRequest(http.MethodPut, signed["url"].(string), strings.NewReader("id\n3\n"))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Less(t, resp.StatusCode, 300, resp.Status)

	// 4. Commit: the listing and the notification to processing.
	code, commit := storageCall(t, sc, brokerapi.PathStorageCommit, "user-ds-1", map[string]string{"org": "org1", "space": "loadingzone", "root_dir": "batch-7/"})
	require.Equal(t, 200, code, commit)
	var names []string
	for _, o := range commit["objects"].([]any) {
		names = append(names, o.(map[string]any)["name"].(string))
	}
	assert.ElementsMatch(t, []string{"incoming/batch-7/a.csv", "incoming/batch-7/sub/b.csv", "incoming/batch-7/c.csv"}, names)
	assert.Equal(t, "projects/my-project/topics/org1-commits", commit["topic"])
	msgs := gcp.PubSub.Messages()
	require.Len(t, msgs, published+1)
	last := msgs[len(msgs)-1]
	assert.Equal(t, commit["message_id"], last.ID)
	assert.Equal(t, "incoming/batch-7/", last.Attributes["root_dir"])
	var n cloudstorage.Notification
	require.NoError(t, json.Unmarshal(last.Data, &n))
	assert.Len(t, n.Objects, 3)
	assert.Equal(t, "serviceAccount:apps/svc-prod-app-1 for user-ds-1", n.CommittedBy)

	audit, err := os.ReadFile(sc.audit)
	require.NoError(t, err)
	assert.Contains(t, string(audit), `"action":"storage-commit"`)
	assert.Contains(t, string(audit), `"target":"gs://org1-landing/incoming/batch-7/"`)
	assert.NotContains(t, string(audit), tok, "tokens never reach the audit log")
}

func TestStorageRefusals(t *testing.T) {
	setup(t)
	sc := startSidecar(t, "apps", "svc-prod-app-1", "storage-refusals", brokered)
	for _, c := range []struct {
		name, path, caller string
		body               any
		status             int
		msg                string
	}{
		{"supplier deletes in the loading zone", brokerapi.PathStorageCredentials, "user-ds-1", map[string]string{"org": "org1", "space": "loadingzone", "access": "delete"}, 200, ""},
		{"user reads curated", brokerapi.PathStorageCredentials, "user-ds-2", map[string]string{"org": "org1", "space": "curated", "access": "read"}, 200, ""},
		{"the owner is only a user of curated", brokerapi.PathStorageCredentials, "", map[string]string{"org": "org1", "space": "curated", "access": "upload/main"}, 403, "owner serviceAccount:apps/svc-prod-app-1 needs role trustee in space org1/curated (has user)"},
		{"plain upload into a main space", brokerapi.PathStorageCredentials, "user-ds-1", map[string]string{"org": "org1", "space": "archive", "access": "upload"}, 403, "uploads go through the loading zone: org1/archive is a main space, which takes upload/main"},
		{"upload/main into the loading zone", brokerapi.PathStorageCredentials, "user-ds-1", map[string]string{"org": "org1", "space": "loadingzone", "access": "upload/main"}, 403, "org1/loadingzone is the loading zone, which takes upload"},
		{"upload/main without the delete right", brokerapi.PathStorageCredentials, "user-ds-2", map[string]string{"org": "org1", "space": "archive", "access": "upload/main"}, 403, "caller user:user-ds-2 needs role trustee in space org1/archive (has user)"},
		{"a signed PUT into a main space without the delete right", brokerapi.PathStorageSignedURL, "user-ds-2", map[string]string{"org": "org1", "space": "archive", "object": "x.csv", "method": "PUT"}, 403, "needs role trustee in space org1/archive"},
		{"a caller without the role", brokerapi.PathStorageCredentials, "user-ds-2", map[string]string{"org": "org1", "space": "loadingzone", "access": "upload"}, 403, "caller user:user-ds-2 needs role supplier in space org1/loadingzone (has none)"},
		{"a stranger", brokerapi.PathStorageCredentials, "mallory", map[string]string{"org": "org1", "space": "curated", "access": "read"}, 403, "caller user:mallory needs access to org org1 and role user"},
		{"an org without storage", brokerapi.PathStorageCredentials, "", map[string]string{"org": "org2", "space": "x", "access": "read"}, 404, "no space"},
		{"an unknown org", brokerapi.PathStorageCredentials, "", map[string]string{"org": "nope", "space": "x", "access": "read"}, 404, "no space"},
		{"the caller in the body", brokerapi.PathStorageCredentials, "", []byte(`{"org":"org1","space":"curated","access":"read","caller":{"user":"user-ds-2"}}`), 400, "not from the body"},
		{"a traversal in a signed URL", brokerapi.PathStorageSignedURL, "", map[string]string{"org": "org1", "space": "loadingzone", "object": "../../curated/x", "method": "GET"}, 400, "clean path"},
		{"commit outside the loading zone", brokerapi.PathStorageCommit, "user-ds-2", map[string]string{"org": "org1", "space": "curated", "root_dir": "x"}, 403, "commits announce uploads to the loading zone"},
		{"an oversized body", brokerapi.PathStorageCommit, "", []byte(`{"org":"` + strings.Repeat("o", 2<<20) + `"}`), 413, ""},
		{"malformed JSON", brokerapi.PathStorageCredentials, "", []byte(`{"org":"org1",`), 400, "bad request body"},
	} {
		code, out := storageCall(t, sc, c.path, c.caller, c.body)
		assert.Equal(t, c.status, code, "%s: %v", c.name, out)
		if c.msg != "" {
			assert.Contains(t, out["error"], c.msg, c.name)
		}
	}
}

// The seed's upload/main: a trustee (owner and caller) uploads straight into a main space with
// a credential or a signed PUT; delete credentials carry the delete role's permissions and
// never object ACLs or IAM policies, as STS resolves their boundary.
func TestStorageUploadMainAndDelete(t *testing.T) {
	setup(t)
	sc := startSidecar(t, "apps", "svc-prod-app-1", "storage-upload-main", brokered)
	gcp.GCS.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: "org1-data"})

	code, cred := storageCall(t, sc, brokerapi.PathStorageCredentials, "user-ds-1", map[string]string{"org": "org1", "space": "archive", "access": "upload/main"})
	require.Equal(t, 200, code, cred)
	assert.Equal(t, "upload/main", cred["access"])
	assert.Equal(t, "archive/", cred["prefix"])
	issued, ok := gcp.STS.Boundary(cred["access_token"].(string))
	require.True(t, ok)
	perms := issued.Permissions("org1-data")
	assert.Contains(t, perms, "storage.objects.create")
	assert.NotContains(t, perms, "storage.objects.delete", "upload/main creates; overwriting needs delete")
	w := appStorageClient(t, cred["access_token"].(string)).Bucket("org1-data").Object("archive/direct.csv").NewWriter(context.Background())
	_, err := w.Write([]byte("a,b\n"))
	require.NoError(t, err)
	require.NoError(t, w.Close())

	code, signed := storageCall(t, sc, brokerapi.PathStorageSignedURL, "user-ds-1", map[string]string{"org": "org1", "space": "archive", "object": "signed.csv", "method": "PUT"})
	require.Equal(t, 200, code, signed)
	req, err := http.NewRequest(http.MethodPut, signed["url"].(string), strings.NewReader("c,d\n"))
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Less(t, resp.StatusCode, 300, resp.Status)
	obj, err := gcp.GCS.GetObject("org1-data", "archive/signed.csv")
	require.NoError(t, err)
	assert.Equal(t, "c,d\n", string(obj.Content))

	code, del := storageCall(t, sc, brokerapi.PathStorageCredentials, "user-ds-1", map[string]string{"org": "org1", "space": "archive", "access": "delete"})
	require.Equal(t, 200, code, del)
	issued, ok = gcp.STS.Boundary(del["access_token"].(string))
	require.True(t, ok)
	assert.Equal(t, []string{"inRole:" + cloudstorage.DefaultDeleteRole}, issued.Rules[0].Permissions)
	perms = issued.Permissions("org1-data")
	for _, p := range []string{"storage.objects.list", "storage.objects.get", "storage.objects.create", "storage.objects.delete"} {
		assert.Contains(t, perms, p)
	}
	for _, p := range []string{"storage.objects.setIamPolicy", "storage.objects.getIamPolicy", "storage.objects.setRetention", "storage.managedFolders.setIamPolicy"} {
		assert.NotContains(t, perms, p, "objectAdmin's, not the delete role's")
	}
}

func TestStorageOutage(t *testing.T) {
	setup(t)
	sc := startSidecar(t, "apps", "svc-prod-app-1", "storage-outage", brokered)
	// Only this test asks for the scratch space: nothing is cached for it yet.
	body := map[string]string{"org": "org1", "space": "scratch", "access": "read"}
	gcp.Creds.SetDown(true)
	code, out := storageCall(t, sc, brokerapi.PathStorageCredentials, "", body)
	gcp.Creds.SetDown(false)
	assert.Equal(t, 503, code, out)
	assert.Equal(t, "unavailable", out["code"])
	gcp.STS.SetDown(true)
	code, out = storageCall(t, sc, brokerapi.PathStorageCredentials, "", body)
	gcp.STS.SetDown(false)
	assert.Equal(t, 503, code, out)
	code, out = storageCall(t, sc, brokerapi.PathStorageCredentials, "", body)
	assert.Equal(t, 200, code, "nothing cached by the outages: %v", out)
}

// A space defined as objects: an Org with storage roles and a Space, both accepted, reach the
// sidecar like the file's.
func TestStorageSpaceObjects(t *testing.T) {
	setup(t)
	admin := objectsClient(t, "platform-admin")
	_, err := kube.RbacV1().ClusterRoleBindings().Create(ctx(t), &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "e2e-storage-admin"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "warden-admin"},
		Subjects:   []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: "platform-admin"}},
	}, metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		require.NoError(t, err)
	}
	org := &wardenv1.Org{ObjectMeta: metav1.ObjectMeta{Name: "org4"}, Spec: wardenv1.OrgSpec{
		GCPServiceAccount: "aes4-svc@my-project.iam.gserviceaccount.com",
		Storage:           &wardenv1.OrgStorage{Access: []wardenv1.Member{"serviceAccount:apps/svc-prod-app-1"}},
	}}
	space := &wardenv1.Space{ObjectMeta: metav1.ObjectMeta{Name: "org4.models"}, Spec: wardenv1.SpaceSpec{
		Org: "org4", Bucket: "org4-models", Prefix: "models/",
		RoleGrants: wardenv1.RoleGrants{Trustees: []wardenv1.Member{"serviceAccount:apps/svc-prod-app-1"}},
	}}
	thief := &wardenv1.Space{ObjectMeta: metav1.ObjectMeta{Name: "org4.thief"}, Spec: wardenv1.SpaceSpec{
		Org: "org4", Bucket: "org1-landing", Prefix: "incoming/batch-7/",
		RoleGrants: wardenv1.RoleGrants{Trustees: []wardenv1.Member{"serviceAccount:apps/svc-prod-app-1"}},
	}}
	require.NoError(t, admin.Create(ctx(t), org))
	require.NoError(t, admin.Create(ctx(t), space))
	require.NoError(t, admin.Create(ctx(t), thief))
	t.Cleanup(func() {
		_ = admin.Delete(context.Background(), thief)
		_ = admin.Delete(context.Background(), space)
		_ = admin.Delete(context.Background(), org)
	})
	acceptedAs(t, admin, space, wardenv1.ReasonAccepted)
	c := acceptedAs(t, admin, thief, wardenv1.ReasonConflict) // a Space overlapping the file's loading zone is not in force
	assert.Contains(t, c.Message, "org1/loadingzone")

	sc := startSidecar(t, "apps", "svc-prod-app-1", "storage-objects", brokered)
	require.Eventually(t, func() bool {
		code, _ := storageCall(t, sc, brokerapi.PathStorageCredentials, "", map[string]string{"org": "org4", "space": "models", "access": "delete"})
		return code == 200
	}, 30*time.Second, 200*time.Millisecond)
	code, out := storageCall(t, sc, brokerapi.PathStorageCredentials, "", map[string]string{"org": "org4", "space": "thief", "access": "read"})
	assert.Equal(t, 404, code, out)
}

// A policy edit takes a role away: the next request is refused, although a credential for that
// space is cached (decisions are never cached, only tokens); a broken edit keeps the last good
// policy, roles included.
func TestStoragePolicyReload(t *testing.T) {
	setup(t)
	t.Cleanup(func() { writePolicy(t, initialPolicy) })
	sc := startSidecar(t, "apps", "svc-prod-app-1", "storage-reload", brokered)
	body := map[string]string{"org": "org1", "space": "curated", "access": "read"}
	code, out := storageCall(t, sc, brokerapi.PathStorageCredentials, "user-ds-2", body)
	require.Equal(t, 200, code, out)

	writePolicy(t, strings.Replace(initialPolicy, "users: [serviceAccount:apps/svc-prod-app-1, user:user-ds-2]", "users: [serviceAccount:apps/svc-prod-app-1]", 1))
	require.Eventually(t, func() bool {
		code, out = storageCall(t, sc, brokerapi.PathStorageCredentials, "user-ds-2", body)
		return code == 403
	}, time.Minute, 100*time.Millisecond, "the role was never taken away: %v", out)
	assert.Contains(t, out["error"], "caller user:user-ds-2 needs role user in space org1/curated")

	writePolicy(t, strings.Replace(initialPolicy, "visibility", "visibilty", 1)+"\norgs: [broken\n")
	require.Eventually(t, func() bool {
		_, body := readyz(t)
		return strings.Contains(body, "is broken")
	}, time.Minute, 100*time.Millisecond)
	code, _ = storageCall(t, sc, brokerapi.PathStorageCredentials, "user-ds-2", body)
	assert.Equal(t, 403, code, "the last good policy is still in force")
	code, _ = storageCall(t, sc, brokerapi.PathStorageCredentials, "", body)
	assert.Equal(t, 200, code)
}

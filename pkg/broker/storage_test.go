package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/fsouza/fake-gcs-server/fakestorage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warden-dev/warden/internal/testing/testgcp"
	"github.com/warden-dev/warden/pkg/admission/mutate"
	"github.com/warden-dev/warden/pkg/brokerapi"
	"github.com/warden-dev/warden/pkg/cloudstorage"
	"github.com/warden-dev/warden/pkg/grants"
	"github.com/warden-dev/warden/pkg/policy"
)

const storagePolicy = testPolicy + `
groups:
  loaders: [lou]
orgs:
  - name: acme
    gcpServiceAccount: acme@proj-1234.iam.gserviceaccount.com
    storage:
      access: [serviceAccount:apps/svc, group:loaders, user:ann, user:tess]
      topic: acme-commits
      spaces:
        - {name: lz, bucket: acme-lz, prefix: in/, loadingZone: true, suppliers: [serviceAccount:apps/svc, group:loaders]}
        - {name: curated, bucket: acme-data, prefix: curated/, users: [serviceAccount:apps/svc, user:ann]}
        - {name: archive, bucket: acme-data, prefix: archive/, users: [user:ann], trustees: [serviceAccount:apps/svc, user:tess]}
gcp: {project: proj-1234}
storage:
  admins: [user:root]
`

func storageFixture(t *testing.T) (*fixture, *testgcp.Env, string) {
	t.Helper()
	f := newFixture(t)
	pol, err := policy.Parse([]byte(storagePolicy))
	require.NoError(t, err)
	env, err := testgcp.Start(context.Background(), "acme@proj-1234.iam.gserviceaccount.com")
	require.NoError(t, err)
	t.Cleanup(env.Close)
	require.NoError(t, env.CreateTopic(context.Background(), "proj-1234", "acme-commits"))
	env.GCS.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: "acme-lz"})
	env.GCS.CreateObject(fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: "acme-lz", Name: "in/b1/x.csv"}, Content: []byte("x")})
	svc, err := cloudstorage.New(cloudstorage.Options{IAM: env.IAM, Downscoper: cloudstorage.STS{Endpoint: env.STSEndpoint()},
		Lister: cloudstorage.GCS{Endpoint: env.GCSEndpoint()}, Publisher: cloudstorage.PubSub{Endpoint: env.PubSubEndpoint(), Insecure: true},
		SignedURLHost: env.GCSHost(), SignedURLInsecure: true})
	require.NoError(t, err)
	cfg := mutate.DefaultConfig()
	cfg.SidecarImage = "example.com/sidecar:test"
	view := func() policy.View { return pol }
	f.srv, err = New(Options{Kube: f.kube, Grants: grants.NewPolicyEngine(view), Pods: cfg.Rules(f.keys),
		Namespaces: labels{"apps": optedIn, "plain": {}}, Storage: svc, Policy: view, AcceptTokens: true})
	require.NoError(t, err)
	return f, env, f.pod(t, "apps", "good", true)
}

func TestBrokerStorage(t *testing.T) {
	f, env, tok := storageFixture(t)
	owner := `"caller":{"service_account":"apps/svc"}`
	for _, tc := range []struct {
		name, path, body string
		status           int
		msg              string
	}{
		{"owner uploads to the loading zone", brokerapi.PathStorageCredentials, `{"org":"acme","space":"lz","access":"upload",` + owner + `}`, 200, `"bucket":"acme-lz","prefix":"in/"`},
		{"supplier deletes in the loading zone", brokerapi.PathStorageCredentials, `{"org":"acme","space":"lz","access":"delete","caller":{"user":"lou"}}`, 200, `"access":"delete"`},
		{"user reads curated", brokerapi.PathStorageCredentials, `{"org":"acme","space":"curated","access":"read","caller":{"user":"ann"}}`, 200, `"token_type":"Bearer"`},
		{"upload into a main space", brokerapi.PathStorageCredentials, `{"org":"acme","space":"archive","access":"upload","caller":{"user":"tess"}}`, 403, "uploads go through the loading zone: acme/archive is a main space, which takes upload/main (needs role trustee)"},
		{"upload/main needs the delete right", brokerapi.PathStorageCredentials, `{"org":"acme","space":"curated","access":"upload/main","caller":{"user":"ann"}}`, 403, "owner serviceAccount:apps/svc needs role trustee in space acme/curated (has user)"},
		{"upload/main, caller without the delete right", brokerapi.PathStorageCredentials, `{"org":"acme","space":"archive","access":"upload/main","caller":{"user":"ann"}}`, 403, "caller user:ann needs role trustee in space acme/archive (has user)"},
		{"trustees upload straight into a main space", brokerapi.PathStorageCredentials, `{"org":"acme","space":"archive","access":"upload/main","caller":{"user":"tess"}}`, 200, `"access":"upload/main"`},
		{"upload/main into the loading zone", brokerapi.PathStorageCredentials, `{"org":"acme","space":"lz","access":"upload/main",` + owner + `}`, 403, "acme/lz is the loading zone, which takes upload"},
		{"an admin caller does not move uploads", brokerapi.PathStorageCredentials, `{"org":"acme","space":"archive","access":"upload","caller":{"user":"root"}}`, 403, "uploads go through the loading zone"},
		{"caller lacks the role", brokerapi.PathStorageCredentials, `{"org":"acme","space":"lz","access":"upload","caller":{"user":"ann"}}`, 403, "caller user:ann needs role supplier in space acme/lz (has none)"},
		{"admin caller still needs the owner", brokerapi.PathStorageCredentials, `{"org":"acme","space":"curated","access":"delete","caller":{"user":"root"}}`, 403, "owner serviceAccount:apps/svc needs role trustee"},
		{"vouched group", brokerapi.PathStorageCredentials, `{"org":"acme","space":"lz","access":"upload","caller":{"user":"zed","groups":["loaders"]}}`, 200, `"access":"upload"`},
		{"unknown space", brokerapi.PathStorageCredentials, `{"org":"acme","space":"nope","access":"read",` + owner + `}`, 404, `has no space`},
		{"unknown org", brokerapi.PathStorageCredentials, `{"org":"evil","space":"lz","access":"read",` + owner + `}`, 404, "no space"},
		{"bad access", brokerapi.PathStorageCredentials, `{"org":"acme","space":"lz","access":"admin",` + owner + `}`, 400, "not read, upload, upload/main or delete"},
		{"bad org name", brokerapi.PathStorageCredentials, `{"org":"../acme","space":"lz","access":"read",` + owner + `}`, 400, "org name"},
		{"unknown field", brokerapi.PathStorageCredentials, `{"org":"acme","space":"lz","access":"read","bucket":"other",` + owner + `}`, 400, "unknown field"},
		{"malformed", brokerapi.PathStorageCredentials, `{"org":`, 400, "malformed"},
		{"another SA as caller", brokerapi.PathStorageCredentials, `{"org":"acme","space":"lz","access":"read","caller":{"service_account":"apps/other"}}`, 403, "not this pod's owner"},
		{"signed PUT", brokerapi.PathStorageSignedURL, `{"org":"acme","space":"lz","object":"b2/y.csv","method":"PUT",` + owner + `}`, 200, `"object":"in/b2/y.csv"`},
		{"signed PUT into a main space is upload/main", brokerapi.PathStorageSignedURL, `{"org":"acme","space":"archive","object":"y.csv","method":"PUT",` + owner + `}`, 200, `"object":"archive/y.csv"`},
		{"signed PUT into a main space, caller without the delete right", brokerapi.PathStorageSignedURL, `{"org":"acme","space":"archive","object":"y.csv","method":"PUT","caller":{"user":"ann"}}`, 403, "caller user:ann needs role trustee in space acme/archive"},
		{"signed DELETE outside the zone", brokerapi.PathStorageSignedURL, `{"org":"acme","space":"curated","object":"y","method":"DELETE",` + owner + `}`, 403, "trustee"},
		{"signed traversal", brokerapi.PathStorageSignedURL, `{"org":"acme","space":"lz","object":"../../etc","method":"GET",` + owner + `}`, 400, "clean path"},
		{"signed POST", brokerapi.PathStorageSignedURL, `{"org":"acme","space":"lz","object":"y","method":"POST",` + owner + `}`, 400, "not GET, HEAD, PUT or DELETE"},
		{"commit", brokerapi.PathStorageCommit, `{"org":"acme","space":"lz","root_dir":"b1",` + owner + `}`, 200, `"name":"in/b1/x.csv"`},
		{"commit outside the zone", brokerapi.PathStorageCommit, `{"org":"acme","space":"curated","root_dir":"b1","caller":{"user":"root"}}`, 403, "commits announce uploads to the loading zone; acme/curated is a main space"},
		{"commit of nothing", brokerapi.PathStorageCommit, `{"org":"acme","space":"lz","root_dir":"b9",` + owner + `}`, 409, "no object under gs://acme-lz/in/b9/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, msg := f.call(tok, tc.path, tc.body)
			assert.Equal(t, tc.status, status, msg)
			assert.Contains(t, msg, tc.msg)
		})
	}
	msgs := env.PubSub.Messages()
	require.Len(t, msgs, 1)
	var n cloudstorage.Notification
	require.NoError(t, json.Unmarshal(msgs[0].Data, &n))
	assert.Equal(t, "serviceAccount:apps/svc", n.CommittedBy)

}

func TestBrokerStorageOutages(t *testing.T) {
	f, env, tok := storageFixture(t)
	body := `{"org":"acme","space":"curated","access":"read","caller":{"service_account":"apps/svc"}}`
	env.STS.SetDown(true)
	status, msg := f.call(tok, brokerapi.PathStorageCredentials, body)
	assert.Equal(t, 503, status, msg)
	assert.Contains(t, msg, `"code":"unavailable"`)
	env.STS.SetDown(false)

	env.Creds.Deny("acme@proj-1234.iam.gserviceaccount.com")
	status, msg = f.call(tok, brokerapi.PathStorageCredentials, body)
	assert.Equal(t, 502, status, msg)
	assert.Contains(t, msg, `"code":"gcp_denied"`)
	env.Creds.Allow("acme@proj-1234.iam.gserviceaccount.com")

	status, msg = f.call(tok, brokerapi.PathStorageCredentials, body)
	assert.Equal(t, 200, status, "nothing was cached by the failures: %s", msg)
}

func TestBrokerStorageOff(t *testing.T) {
	f := newFixture(t)
	tok := f.pod(t, "apps", "good", true)
	for _, p := range []string{brokerapi.PathStorageCredentials, brokerapi.PathStorageSignedURL, brokerapi.PathStorageCommit} {
		status, msg := f.call(tok, p, `{}`)
		assert.Equal(t, 501, status, fmt.Sprint(p, msg))
		assert.Contains(t, msg, "--storage")
	}
}

package cloudstorage

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/iam/credentials/apiv1/credentialspb"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"github.com/googleapis/gax-go/v2"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/warden-dev/warden/internal/testing/fakecreds"
	"github.com/warden-dev/warden/internal/testing/testgcp"
	"github.com/warden-dev/warden/pkg/policy"
)

const gsa = "acme-data@proj-1234.iam.gserviceaccount.com"

type fixture struct {
	env   *testgcp.Env
	svc   *Service
	clock *clocktesting.FakeClock
}

func setup(t *testing.T, opts ...func(*Options)) fixture {
	t.Helper()
	ctx := context.Background()
	env, err := testgcp.Start(ctx, gsa)
	require.NoError(t, err)
	t.Cleanup(env.Close)
	c := clocktesting.NewFakeClock(time.Now())
	env.Creds.Now, env.STS.Now = c.Now, c.Now
	o := Options{
		IAM:               env.IAM,
		Downscoper:        STS{Endpoint: env.STSEndpoint()},
		Lister:            GCS{Endpoint: env.GCSEndpoint()},
		Publisher:         PubSub{Endpoint: env.PubSubEndpoint(), Insecure: true},
		SignedURLHost:     env.GCSHost(),
		SignedURLInsecure: true,
		Now:               c.Now,
	}
	for _, f := range opts {
		f(&o)
	}
	svc, err := New(o)
	require.NoError(t, err)
	return fixture{env: env, svc: svc, clock: c}
}

func target(a policy.Access) Target {
	return Target{Org: "acme", Space: "raw", ServiceAccount: gsa, Bucket: "acme-data", Prefix: "raw/", Access: a,
		Project: "proj-1234", Topic: "acme-commits"}
}

// What a token of each kind may do, as STS resolves its boundary's roles: never object ACLs or
// IAM policies, and deleting only with delete.
func TestCredentialPermissions(t *testing.T) {
	ctx := context.Background()
	never := []string{"storage.objects.setIamPolicy", "storage.objects.getIamPolicy", "storage.managedFolders.setIamPolicy", "storage.objects.setRetention"}
	granted := func(f fixture, a policy.Access) []string {
		c, err := f.svc.Credential(ctx, target(a))
		require.NoError(t, err, a)
		is, ok := f.env.STS.Boundary(c.AccessToken)
		require.True(t, ok)
		return is.Permissions("acme-data")
	}
	f := setup(t)
	for _, tc := range []struct {
		access   policy.Access
		has, not []string
	}{
		{policy.AccessRead, []string{"storage.objects.get", "storage.objects.list"}, []string{"storage.objects.create", "storage.objects.delete", "storage.objects.update"}},
		{policy.AccessUpload, []string{"storage.objects.get", "storage.objects.list", "storage.objects.create"}, []string{"storage.objects.delete", "storage.objects.update"}},
		{policy.AccessUploadMain, []string{"storage.objects.create"}, []string{"storage.objects.delete", "storage.objects.update"}},
		{policy.AccessDelete, []string{"storage.objects.get", "storage.objects.list", "storage.objects.create", "storage.objects.delete"}, nil},
	} {
		perms := granted(f, tc.access)
		for _, p := range tc.has {
			assert.Contains(t, perms, p, tc.access)
		}
		for _, p := range append(tc.not, never...) {
			assert.NotContains(t, perms, p, tc.access)
		}
	}

	// A custom delete role: exactly list, read, create and delete.
	const custom = "projects/proj-1234/roles/wardenObjectDeleter"
	f = setup(t, func(o *Options) { o.DeleteRole = custom })
	f.env.STS.DefineRole(custom, "storage.objects.create", "storage.objects.delete", "storage.objects.get", "storage.objects.list")
	assert.Equal(t, []string{"storage.objects.create", "storage.objects.delete", "storage.objects.get", "storage.objects.list"}, granted(f, policy.AccessDelete))

	// A role that does not exist is STS's refusal, not a weaker token.
	f = setup(t, func(o *Options) { o.DeleteRole = "projects/proj-1234/roles/noSuchRole" })
	_, err := f.svc.Credential(ctx, target(policy.AccessDelete))
	assert.Error(t, err)

	_, err = New(Options{IAM: f.env.IAM, Downscoper: STS{}, Lister: GCS{}, Publisher: PubSub{}, DeleteRole: "storage.objectUser"})
	assert.ErrorContains(t, err, "delete role")
}

func TestCredentialBoundaries(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	for _, a := range policy.Accesses {
		c, err := f.svc.Credential(ctx, target(a))
		require.NoError(t, err, a)
		assert.Equal(t, "Bearer", c.TokenType)
		assert.Equal(t, "acme-data", c.Bucket)
		assert.Equal(t, "raw/", c.Prefix)
		assert.WithinDuration(t, f.clock.Now().Add(DefaultLifetimes[a]), c.ExpiresAt, time.Second, a)

		issued, ok := f.env.STS.Boundary(c.AccessToken)
		require.True(t, ok, "the token came from STS, downscoped")
		assert.Equal(t, gsa, issued.Account)
		require.Len(t, issued.Rules, 1)
		r := issued.Rules[0]
		assert.Equal(t, "//storage.googleapis.com/projects/_/buckets/acme-data", r.Resource)
		var roles []string
		for _, p := range r.Permissions {
			roles = append(roles, strings.TrimPrefix(p, "inRole:"))
		}
		want, _ := Roles(a, DefaultDeleteRole)
		assert.Equal(t, want, roles, a)
		assert.Equal(t, "resource.name.startsWith('projects/_/buckets/acme-data/objects/raw/') || "+
			"api.getAttribute('storage.googleapis.com/objectListPrefix', '').startsWith('raw/')", r.Expression)
	}
}

// recordingIAM remembers the token requests that reach IAM Credentials.
type recordingIAM struct {
	IAMCredentials
	mu   sync.Mutex
	reqs []*credentialspb.GenerateAccessTokenRequest
}

func (r *recordingIAM) GenerateAccessToken(ctx context.Context, req *credentialspb.GenerateAccessTokenRequest, opts ...gax.CallOption) (*credentialspb.GenerateAccessTokenResponse, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, req)
	r.mu.Unlock()
	return r.IAMCredentials.GenerateAccessToken(ctx, req, opts...)
}

func TestRootTokens(t *testing.T) {
	rec := &recordingIAM{}
	f := setup(t, func(o *Options) { rec.IAMCredentials = o.IAM; o.IAM = rec })
	for _, a := range policy.Accesses {
		_, err := f.svc.Credential(context.Background(), target(a))
		require.NoError(t, err)
	}
	require.Len(t, rec.reqs, 4)
	want := []struct {
		scope    string
		lifetime time.Duration
	}{{scopeRead, time.Hour}, {scopeReadWrite, 30 * time.Minute}, {scopeReadWrite, 30 * time.Minute}, {scopeReadWrite, 10 * time.Minute}}
	for i, r := range rec.reqs {
		assert.Equal(t, "projects/-/serviceAccounts/"+gsa, r.Name)
		assert.Equal(t, []string{want[i].scope}, r.Scope, "reads impersonate read-only")
		assert.Equal(t, want[i].lifetime, r.Lifetime.AsDuration())
		assert.Empty(t, r.Delegates)
	}
}

func TestWholeBucketHasNoCondition(t *testing.T) {
	f := setup(t)
	tg := target(policy.AccessRead)
	tg.Prefix = ""
	c, err := f.svc.Credential(context.Background(), tg)
	require.NoError(t, err)
	issued, _ := f.env.STS.Boundary(c.AccessToken)
	assert.Empty(t, issued.Rules[0].Expression)
}

func TestCacheReuseAndRemintAtBuffer(t *testing.T) {
	f := setup(t, func(o *Options) {
		o.Lifetimes = map[policy.Access]time.Duration{policy.AccessUpload: 20 * time.Minute}
		o.Buffer = 5 * time.Minute
	})
	ctx := context.Background()
	first, err := f.svc.Credential(ctx, target(policy.AccessUpload))
	require.NoError(t, err)
	mints := f.env.Creds.Calls(fakecreds.MethodGenerateAccessToken)

	f.clock.Step(14*time.Minute + 59*time.Second) // 5m01s left: still handed out
	again, err := f.svc.Credential(ctx, target(policy.AccessUpload))
	require.NoError(t, err)
	assert.Equal(t, first.AccessToken, again.AccessToken)
	assert.Equal(t, mints, f.env.Creds.Calls(fakecreds.MethodGenerateAccessToken), "cached: no IAM call")
	assert.Equal(t, 1, f.env.STS.Calls())

	f.clock.Step(2 * time.Second) // 4m59s left: under the buffer, re-minted
	fresh, err := f.svc.Credential(ctx, target(policy.AccessUpload))
	require.NoError(t, err)
	assert.NotEqual(t, first.AccessToken, fresh.AccessToken)
	assert.Equal(t, mints+1, f.env.Creds.Calls(fakecreds.MethodGenerateAccessToken))
	assert.WithinDuration(t, f.clock.Now().Add(20*time.Minute), fresh.ExpiresAt, time.Second)

	// Another access kind, or the same space moved elsewhere, is another token.
	other, err := f.svc.Credential(ctx, target(policy.AccessRead))
	require.NoError(t, err)
	assert.NotEqual(t, fresh.AccessToken, other.AccessToken)
	moved := target(policy.AccessUpload)
	moved.Prefix = "raw-v2/"
	m, err := f.svc.Credential(ctx, moved)
	require.NoError(t, err)
	assert.NotEqual(t, fresh.AccessToken, m.AccessToken, "a policy edit never serves the old place's token")
}

func TestConcurrentColdRequestsMintOnce(t *testing.T) {
	f := setup(t)
	var wg sync.WaitGroup
	tokens := make([]string, 16)
	for i := range tokens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := f.svc.Credential(context.Background(), target(policy.AccessRead))
			assert.NoError(t, err)
			tokens[i] = c.AccessToken
		}()
	}
	wg.Wait()
	assert.Equal(t, 1, f.env.Creds.Calls(fakecreds.MethodGenerateAccessToken))
	for _, tok := range tokens {
		assert.Equal(t, tokens[0], tok)
	}
}

func TestOutagesCacheNothing(t *testing.T) {
	f := setup(t)
	ctx := context.Background()

	f.env.Creds.SetDown(true)
	_, err := f.svc.Credential(ctx, target(policy.AccessRead))
	assert.ErrorIs(t, err, ErrUnavailable)
	f.env.Creds.SetDown(false)

	f.env.STS.SetDown(true)
	_, err = f.svc.Credential(ctx, target(policy.AccessRead))
	assert.ErrorIs(t, err, ErrUnavailable)
	f.env.STS.SetDown(false)

	f.env.Creds.Deny(gsa)
	_, err = f.svc.Credential(ctx, target(policy.AccessRead))
	assert.ErrorIs(t, err, ErrDenied, "the broker may not impersonate the org's account")
	f.env.Creds.Allow(gsa)

	c, err := f.svc.Credential(ctx, target(policy.AccessRead))
	require.NoError(t, err, "nothing was cached by the failures")
	_, ok := f.env.STS.Boundary(c.AccessToken)
	assert.True(t, ok)

	unknown := target(policy.AccessRead)
	unknown.ServiceAccount = "ghost@proj-1234.iam.gserviceaccount.com"
	_, err = f.svc.Credential(ctx, unknown)
	assert.ErrorIs(t, err, ErrDenied)
}

func TestBadTargets(t *testing.T) {
	f := setup(t)
	for name, mutate := range map[string]func(*Target){
		"unknown access":  func(t *Target) { t.Access = "admin" },
		"pubsub access":   func(t *Target) { t.Access = accessPubSub },
		"quote in prefix": func(t *Target) { t.Prefix = "raw') || true || ('/" },
		"bad bucket":      func(t *Target) { t.Bucket = "Bad Bucket" },
	} {
		tg := target(policy.AccessRead)
		mutate(&tg)
		_, err := f.svc.Credential(context.Background(), tg)
		assert.ErrorIs(t, err, ErrBadInput, name)
	}
	assert.Zero(t, f.env.Creds.Calls(fakecreds.MethodGenerateAccessToken), "nothing reached IAM")
}

func TestNewValidatesLifetimes(t *testing.T) {
	base := Options{IAM: fakeIAM{}, Downscoper: STS{}, Lister: GCS{}, Publisher: PubSub{}}
	for name, o := range map[string]func(*Options){
		"over IAM's hour":      func(o *Options) { o.Lifetimes = map[policy.Access]time.Duration{policy.AccessRead: 2 * time.Hour} },
		"not above the buffer": func(o *Options) { o.Buffer = 10 * time.Minute },
	} {
		opts := base
		o(&opts)
		_, err := New(opts)
		assert.Error(t, err, name)
	}
	_, err := New(Options{})
	assert.Error(t, err)
}

func TestSignedURL(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	f.env.GCS.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: "acme-data"})

	lz := target(policy.AccessUpload)
	lz.LoadingZone = true
	put, err := f.svc.SignedURL(ctx, lz, "batch-1/part 1.csv", http.MethodPut)
	require.NoError(t, err)
	assert.Equal(t, "raw/batch-1/part 1.csv", put.Object)
	u, err := url.Parse(put.URL)
	require.NoError(t, err)
	// The library signs the host without its port (Cloud Storage's has none).
	require.NoError(t, fakecreds.VerifySignedURL(u, http.MethodPut, u.Hostname(), f.env.Creds.PublicKey(gsa)),
		"the signature verifies against the org account's key")
	assert.Equal(t, gsa+"/"+u.Query().Get("X-Goog-Date")[:8]+"/auto/storage/goog4_request", u.Query().Get("X-Goog-Credential"))
	// An upload URL lives as long as upload credentials (the library counts from its own clock).
	assert.Contains(t, []string{"1799", "1800"}, u.Query().Get("X-Goog-Expires"))

	// Tampering with the object breaks the signature.
	bad := *u
	bad.Path = strings.Replace(bad.Path, "part", "other", 1)
	assert.Error(t, fakecreds.VerifySignedURL(&bad, http.MethodPut, u.Hostname(), f.env.Creds.PublicKey(gsa)))
	assert.Error(t, fakecreds.VerifySignedURL(u, http.MethodGet, u.Hostname(), f.env.Creds.PublicKey(gsa)), "signed for PUT only")

	// The URL works with plain HTTP.
	req, _ := http.NewRequest(http.MethodPut, put.URL, bytes.NewReader([]byte("a,b\n1,2\n")))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Less(t, resp.StatusCode, 300, resp.Status)
	obj, err := f.env.GCS.GetObject("acme-data", "raw/batch-1/part 1.csv")
	require.NoError(t, err)
	assert.Equal(t, "a,b\n1,2\n", string(obj.Content))

	for name, c := range map[string]struct {
		access         policy.Access
		object, method string
	}{
		"traversal":       {policy.AccessRead, "../other-space/x", http.MethodGet},
		"absolute":        {policy.AccessRead, "/etc/passwd", http.MethodGet},
		"empty":           {policy.AccessRead, "", http.MethodGet},
		"POST":            {policy.AccessUpload, "x", http.MethodPost},
		"PUT, main space": {policy.AccessUpload, "x", http.MethodPut},
		"method > access": {policy.AccessRead, "x", http.MethodDelete},
		"access > method": {policy.AccessDelete, "x", http.MethodGet},
	} {
		_, err := f.svc.SignedURL(ctx, target(c.access), c.object, c.method)
		assert.ErrorIs(t, err, ErrBadInput, name)
	}
	f.env.Creds.SetDown(true)
	_, err = f.svc.SignedURL(ctx, target(policy.AccessRead), "x", http.MethodGet)
	assert.ErrorIs(t, err, ErrUnavailable)
}

func TestCommit(t *testing.T) {
	f := setup(t, func(o *Options) { o.MaxCommitObjects = 3 })
	ctx := context.Background()
	require.NoError(t, f.env.CreateTopic(ctx, "proj-1234", "acme-commits"))
	f.env.GCS.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: "acme-data"})
	for _, name := range []string{"raw/batch-1/a.csv", "raw/batch-1/sub/b.csv", "raw/batch-10/c.csv", "raw/other.csv",
		"raw/big/1", "raw/big/2", "raw/big/3", "raw/big/4"} {
		f.env.GCS.CreateObject(fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: "acme-data", Name: name}, Content: []byte(name)})
	}
	zone := target(policy.AccessUpload)
	zone.LoadingZone = true

	c, err := f.svc.Commit(ctx, zone, "batch-1/", "serviceAccount:team-a/etl")
	require.NoError(t, err)
	var names []string
	for _, o := range c.Objects {
		names = append(names, o.Name)
		assert.Equal(t, int64(len(o.Name)), o.Size)
		assert.NotEmpty(t, o.MD5)
	}
	assert.Equal(t, []string{"raw/batch-1/a.csv", "raw/batch-1/sub/b.csv"}, names, "batch-10 is another directory")
	assert.Equal(t, "raw/batch-1/", c.RootDir)
	assert.Equal(t, "projects/proj-1234/topics/acme-commits", c.Topic)

	msgs := f.env.PubSub.Messages()
	require.Len(t, msgs, 1)
	assert.Equal(t, c.MessageID, msgs[0].ID)
	assert.Equal(t, map[string]string{"event": EventCommit, "org": "acme", "space": "raw", "root_dir": "raw/batch-1/"}, msgs[0].Attributes)
	var n Notification
	require.NoError(t, json.Unmarshal(msgs[0].Data, &n))
	assert.Equal(t, "serviceAccount:team-a/etl", n.CommittedBy)
	assert.Len(t, n.Objects, 2)

	for name, c := range map[string]struct {
		dir  string
		t    func(Target) Target
		want error
	}{
		"empty directory":   {"nothing-here", nil, ErrNothingToCommit},
		"too many":          {"big", nil, ErrTooMany},
		"traversal":         {"../../", nil, ErrBadInput},
		"not the zone":      {"batch-1", func(t Target) Target { t.LoadingZone = false; return t }, ErrNotLoadingZone},
		"no topic":          {"batch-1", func(t Target) Target { t.Topic = ""; return t }, ErrNoTopic},
		"topic not created": {"batch-1", func(t Target) Target { t.Topic = "missing"; return t }, ErrDenied},
	} {
		tg := zone
		if c.t != nil {
			tg = c.t(zone)
		}
		_, err := f.svc.Commit(ctx, tg, c.dir, "user:x")
		assert.ErrorIs(t, err, c.want, name)
	}
	assert.Len(t, f.env.PubSub.Messages(), 1, "failed commits publish nothing")
	assert.Equal(t, 1.0, testutil.ToFloat64(f.svc.metrics.commits.WithLabelValues("ok")))
	assert.Equal(t, 1.0, testutil.ToFloat64(f.svc.metrics.commits.WithLabelValues("denied")), "the topic that does not exist")
	assert.Equal(t, 5.0, testutil.ToFloat64(f.svc.metrics.commits.WithLabelValues("error")))

	f.env.GCS.Stop()
	// The client retries a server that does not answer until the deadline; the test's is short.
	short, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_, err = f.svc.Commit(short, zone, "batch-1", "user:x")
	assert.ErrorIs(t, err, ErrUnavailable, "Cloud Storage down")
	assert.Len(t, f.env.PubSub.Messages(), 1)
}

// fakeIAM only satisfies the interface for option validation tests.
type fakeIAM struct{ IAMCredentials }

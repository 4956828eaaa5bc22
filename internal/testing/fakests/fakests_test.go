package fakests_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	credentials "cloud.google.com/go/iam/credentials/apiv1"
	"cloud.google.com/go/iam/credentials/apiv1/credentialspb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google/downscope"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/warden-dev/warden/internal/testing/fakecreds"
	"github.com/warden-dev/warden/internal/testing/fakests"
)

const (
	gsa     = "aes1-svc@my-project.iam.gserviceaccount.com"
	scope   = "https://www.googleapis.com/auth/devstorage.read_only"
	bucket  = "//storage.googleapis.com/projects/_/buckets/prod-dataset-1"
	viewer  = "inRole:roles/storage.objectViewer"
	stsURL  = "https://sts.googleapis.com/v1/token"
	prefixE = "resource.name.startsWith('projects/_/buckets/prod-dataset-1/objects/user=alice/')"
)

type env struct {
	creds *fakecreds.Server
	sts   *fakests.Server
	iam   *credentials.IamCredentialsClient
	clk   *clocktesting.FakeClock
}

// start runs fakecreds and fakests on one test clock, and the real IAM Credentials client.
func start(t *testing.T) *env {
	t.Helper()
	creds, err := fakecreds.Start(gsa)
	require.NoError(t, err)
	t.Cleanup(creds.Stop)
	sts, err := fakests.Start(creds)
	require.NoError(t, err)
	t.Cleanup(sts.Close)
	clk := clocktesting.NewFakeClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	creds.Now, sts.Now = clk.Now, clk.Now
	iam, err := credentials.NewIamCredentialsClient(context.Background(),
		option.WithEndpoint(creds.Addr), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	require.NoError(t, err)
	t.Cleanup(func() { _ = iam.Close() })
	return &env{creds: creds, sts: sts, iam: iam, clk: clk}
}

// subject mints an access token of gsa with the given lifetime.
func (e *env) subject(t *testing.T, lifetime time.Duration) *oauth2.Token {
	t.Helper()
	resp, err := e.iam.GenerateAccessToken(context.Background(), &credentialspb.GenerateAccessTokenRequest{
		Name: "projects/-/serviceAccounts/" + gsa, Scope: []string{scope}, Lifetime: durationpb.New(lifetime)})
	require.NoError(t, err)
	return &oauth2.Token{AccessToken: resp.AccessToken, TokenType: "Bearer", Expiry: resp.ExpireTime.AsTime()}
}

// rewrite sends the downscope library's requests for the real STS endpoint to the fake, and
// refuses any other destination, so the test sees every request the library makes.
type rewrite struct{ to *url.URL }

func (rw rewrite) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.String() != stsURL {
		return nil, fmt.Errorf("unexpected request to %s", r.URL)
	}
	r2 := r.Clone(r.Context())
	r2.URL.Scheme, r2.URL.Host, r2.Host = rw.to.Scheme, rw.to.Host, ""
	return http.DefaultTransport.RoundTrip(r2)
}

// TestDownscopeLibrary proves the fake accepts exactly what golang.org/x/oauth2/google/downscope
// sends, and records the boundary it asked for.
func TestDownscopeLibrary(t *testing.T) {
	t.Parallel()
	e := start(t)
	to, err := url.Parse(e.sts.URL)
	require.NoError(t, err)
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: rewrite{to}})

	e.sts.DefineRole("projects/my-project/roles/datasetReader", "storage.objects.get")
	viewerPerms := fakests.ObjectRoles["roles/storage.objectViewer"]
	tenRules := make([]downscope.AccessBoundaryRule, 10)
	tenWant := make([]fakests.Rule, 10)
	for i := range tenRules {
		res := fmt.Sprintf("//storage.googleapis.com/projects/_/buckets/bucket-%d", i)
		tenRules[i] = downscope.AccessBoundaryRule{AvailableResource: res, AvailablePermissions: []string{viewer}}
		tenWant[i] = fakests.Rule{Resource: res, Permissions: []string{viewer}, Granted: viewerPerms}
	}
	for _, tc := range []struct {
		name  string
		rules []downscope.AccessBoundaryRule
		want  []fakests.Rule
	}{
		{"one rule, no condition",
			[]downscope.AccessBoundaryRule{{AvailableResource: bucket, AvailablePermissions: []string{viewer}}},
			[]fakests.Rule{{Resource: bucket, Permissions: []string{viewer}, Granted: viewerPerms}}},
		{"a condition",
			[]downscope.AccessBoundaryRule{{AvailableResource: bucket, AvailablePermissions: []string{viewer},
				Condition: &downscope.AvailabilityCondition{Expression: prefixE, Title: "alice only", Description: "her prefix"}}},
			[]fakests.Rule{{Resource: bucket, Permissions: []string{viewer}, Granted: viewerPerms, Expression: prefixE}}},
		{"two buckets, custom role, dotted bucket",
			[]downscope.AccessBoundaryRule{
				{AvailableResource: bucket, AvailablePermissions: []string{viewer, "inRole:roles/storage.objectCreator"}},
				{AvailableResource: "//storage.googleapis.com/projects/_/buckets/data.example.com", AvailablePermissions: []string{"inRole:projects/my-project/roles/datasetReader"}}},
			[]fakests.Rule{
				{Resource: bucket, Permissions: []string{viewer, "inRole:roles/storage.objectCreator"}, Granted: union(viewerPerms, fakests.ObjectRoles["roles/storage.objectCreator"])},
				{Resource: "//storage.googleapis.com/projects/_/buckets/data.example.com", Permissions: []string{"inRole:projects/my-project/roles/datasetReader"}, Granted: []string{"storage.objects.get"}}}},
		{"ten rules", tenRules, tenWant},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := e.subject(t, 30*time.Minute)
			ts, err := downscope.NewTokenSource(ctx, downscope.DownscopingConfig{RootSource: oauth2.StaticTokenSource(root), Rules: tc.rules})
			require.NoError(t, err)
			tok, err := ts.Token()
			require.NoError(t, err)
			require.Equal(t, "Bearer", tok.TokenType)
			require.NotEqual(t, root.AccessToken, tok.AccessToken)

			is, ok := e.sts.Boundary(tok.AccessToken)
			require.True(t, ok)
			require.Equal(t, fakests.Issued{Account: gsa, Rules: tc.want, Expiry: root.Expiry}, is)
			_, ok = e.sts.Boundary(root.AccessToken)
			require.False(t, ok, "the subject token is not a downscoped one")
		})
	}
	require.Equal(t, 4, e.sts.Calls())
}

func union(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// A role that does not exist (not predefined, not defined as a custom role) is refused, as STS
// refuses it: a typo in --storage-delete-role fails loudly, not with a token that can do less.
func TestUnknownRoleRefused(t *testing.T) {
	t.Parallel()
	e := start(t)
	to, err := url.Parse(e.sts.URL)
	require.NoError(t, err)
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: rewrite{to}})
	for _, role := range []string{"inRole:roles/storage.objectDeleter", "inRole:projects/my-project/roles/wardenDelete"} {
		ts, err := downscope.NewTokenSource(ctx, downscope.DownscopingConfig{RootSource: oauth2.StaticTokenSource(e.subject(t, time.Hour)),
			Rules: []downscope.AccessBoundaryRule{{AvailableResource: bucket, AvailablePermissions: []string{role}}}})
		require.NoError(t, err)
		_, err = ts.Token()
		require.ErrorContains(t, err, "does not exist", role)
	}
	e.sts.DefineRole("projects/my-project/roles/wardenDelete", "storage.objects.delete", "storage.objects.list")
	ts, err := downscope.NewTokenSource(ctx, downscope.DownscopingConfig{RootSource: oauth2.StaticTokenSource(e.subject(t, time.Hour)),
		Rules: []downscope.AccessBoundaryRule{{AvailableResource: bucket, AvailablePermissions: []string{"inRole:projects/my-project/roles/wardenDelete"}}}})
	require.NoError(t, err)
	tok, err := ts.Token()
	require.NoError(t, err)
	is, _ := e.sts.Boundary(tok.AccessToken)
	assert.Equal(t, []string{"storage.objects.delete", "storage.objects.list"}, is.Permissions(strings.TrimPrefix(bucket, "//storage.googleapis.com/projects/_/buckets/")))
}

// form is a valid exchange, for the hostile cases to break one piece of.
func form(subject string) url.Values {
	return url.Values{
		"grant_type":           {fakests.GrantType},
		"subject_token_type":   {fakests.AccessTokenType},
		"requested_token_type": {fakests.AccessTokenType},
		"subject_token":        {subject},
		"options":              {`{"accessBoundary":{"accessBoundaryRules":[{"availableResource":"` + bucket + `","availablePermissions":["` + viewer + `"]}]}}`},
	}
}

// options is the options field with these rules, as JSON text.
func options(rules string) string {
	return `{"accessBoundary":{"accessBoundaryRules":[` + rules + `]}}`
}

func rule(resource, perms string) string {
	return `{"availableResource":"` + resource + `","availablePermissions":[` + perms + `]}`
}

type answer struct {
	status int
	body   map[string]any
}

func post(t *testing.T, method, u, contentType, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	require.NoError(t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, "application/json; charset=utf-8", resp.Header.Get("Content-Type"))
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m), "%s", b)
	return answer{resp.StatusCode, m}
}

const formType = "application/x-www-form-urlencoded"

func TestExpiresIn(t *testing.T) {
	t.Parallel()
	e := start(t)
	root := e.subject(t, time.Hour)
	e.clk.Step(20 * time.Minute)
	a := post(t, http.MethodPost, e.sts.URL+"/v1/token", formType, form(root.AccessToken).Encode())
	require.Equal(t, http.StatusOK, a.status, "%v", a.body)
	require.Equal(t, float64(40*60), a.body["expires_in"], "the subject's remaining lifetime")
	require.Equal(t, fakests.AccessTokenType, a.body["issued_token_type"])
	require.Equal(t, "Bearer", a.body["token_type"])
	is, ok := e.sts.Boundary(a.body["access_token"].(string))
	require.True(t, ok)
	require.Equal(t, root.Expiry, is.Expiry)

	// With a charset, as some clients send it.
	a = post(t, http.MethodPost, e.sts.URL+"/v1/token", formType+"; charset=utf-8", form(root.AccessToken).Encode())
	require.Equal(t, http.StatusOK, a.status, "%v", a.body)

	// Expired: at the subject's expiry, and with under a second left.
	e.clk.Step(40*time.Minute - 500*time.Millisecond)
	a = post(t, http.MethodPost, e.sts.URL+"/v1/token", formType, form(root.AccessToken).Encode())
	require.Equal(t, answer{400, map[string]any{"error": "invalid_grant", "error_description": "The subject token is invalid or has expired."}}, a)
	e.clk.Step(time.Second)
	a = post(t, http.MethodPost, e.sts.URL+"/v1/token", formType, form(root.AccessToken).Encode())
	require.Equal(t, "invalid_grant", a.body["error"])
}

func TestRefused(t *testing.T) {
	t.Parallel()
	e := start(t)
	sub := e.subject(t, time.Hour).AccessToken
	with := func(k, v string) string { f := form(sub); f.Set(k, v); return f.Encode() }
	without := func(k string) string { f := form(sub); f.Del(k); return f.Encode() }
	opts := func(o string) string { return with("options", o) }
	var eleven []string
	for i := range 11 {
		eleven = append(eleven, rule(fmt.Sprintf("//storage.googleapis.com/projects/_/buckets/b-%d", i), `"`+viewer+`"`))
	}

	for _, tc := range []struct {
		name, method, path, ctype, body string
		status                          int
		code, desc                      string
	}{
		{"GET", http.MethodGet, "/v1/token", "", "", 405, "invalid_request", "method GET"},
		{"PUT", http.MethodPut, "/v1/token", formType, form(sub).Encode(), 405, "invalid_request", "method PUT"},
		{"other path", http.MethodPost, "/v1/oauthtoken", formType, form(sub).Encode(), 404, "not_found", ""},
		{"JSON body", http.MethodPost, "/v1/token", "application/json", `{"grant_type":"` + fakests.GrantType + `"}`, 400, "invalid_request", "Content-Type"},
		{"no content type", http.MethodPost, "/v1/token", "", form(sub).Encode(), 400, "invalid_request", "Content-Type"},
		{"bad form encoding", http.MethodPost, "/v1/token", formType, "grant_type=%zz", 400, "invalid_request", "malformed form"},
		{"oversized body", http.MethodPost, "/v1/token", formType, with("options", strings.Repeat(" ", fakests.MaxBodyLen)), 413, "invalid_request", "over"},
		{"no grant_type", http.MethodPost, "/v1/token", formType, without("grant_type"), 400, "invalid_request", `"grant_type"`},
		{"no subject_token_type", http.MethodPost, "/v1/token", formType, without("subject_token_type"), 400, "invalid_request", `"subject_token_type"`},
		{"no requested_token_type", http.MethodPost, "/v1/token", formType, without("requested_token_type"), 400, "invalid_request", `"requested_token_type"`},
		{"no subject_token", http.MethodPost, "/v1/token", formType, without("subject_token"), 400, "invalid_request", `"subject_token"`},
		{"no options", http.MethodPost, "/v1/token", formType, without("options"), 400, "invalid_request", `"options"`},
		{"wrong grant_type", http.MethodPost, "/v1/token", formType, with("grant_type", "client_credentials"), 400, "unsupported_grant_type", "grant_type"},
		{"id token subject", http.MethodPost, "/v1/token", formType, with("subject_token_type", "urn:ietf:params:oauth:token-type:id_token"), 400, "invalid_request", "subject_token_type"},
		{"JWT requested", http.MethodPost, "/v1/token", formType, with("requested_token_type", "urn:ietf:params:oauth:token-type:jwt"), 400, "invalid_request", "requested_token_type"},
		{"field twice", http.MethodPost, "/v1/token", formType, form(sub).Encode() + "&subject_token=other", 400, "invalid_request", "2 times"},
		{"unknown field", http.MethodPost, "/v1/token", formType, with("actor_token", "x"), 400, "invalid_request", "unknown parameter"},
		{"audience", http.MethodPost, "/v1/token", formType, with("audience", "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/x"), 400, "invalid_request", "audience"},
		{"scope", http.MethodPost, "/v1/token", formType, with("scope", scope), 400, "invalid_request", "scope"},
		{"options not JSON", http.MethodPost, "/v1/token", formType, opts("{"), 400, "invalid_request", "malformed options"},
		{"options an array", http.MethodPost, "/v1/token", formType, opts("[]"), 400, "invalid_request", "malformed options"},
		{"options trailing data", http.MethodPost, "/v1/token", formType, opts(options(rule(bucket, `"`+viewer+`"`)) + "{}"), 400, "invalid_request", "after the JSON"},
		{"unknown top-level key", http.MethodPost, "/v1/token", formType, opts(`{"accessBoundary":{"accessBoundaryRules":[` + rule(bucket, `"`+viewer+`"`) + `]},"lifetime":"43200s"}`), 400, "invalid_request", "lifetime"},
		{"unknown rule key", http.MethodPost, "/v1/token", formType, opts(options(`{"availableResource":"` + bucket + `","availablePermissions":["` + viewer + `"],"availablePermission":["inRole:roles/storage.admin"]}`)), 400, "invalid_request", "availablePermission"},
		{"no accessBoundary", http.MethodPost, "/v1/token", formType, opts(`{}`), 400, "invalid_request", "accessBoundary is required"},
		{"no rules", http.MethodPost, "/v1/token", formType, opts(options("")), 400, "invalid_request", "1 to 10 rules, has 0"},
		{"eleven rules", http.MethodPost, "/v1/token", formType, opts(options(strings.Join(eleven, ","))), 400, "invalid_request", "1 to 10 rules, has 11"},
		{"no resource", http.MethodPost, "/v1/token", formType, opts(options(`{"availablePermissions":["` + viewer + `"]}`)), 400, "invalid_request", "availableResource is required"},
		{"other service", http.MethodPost, "/v1/token", formType, opts(options(rule("//bigquery.googleapis.com/projects/_/buckets/prod-dataset-1", `"`+viewer+`"`))), 400, "invalid_request", "invalid availableResource"},
		{"named project", http.MethodPost, "/v1/token", formType, opts(options(rule("//storage.googleapis.com/projects/my-project/buckets/prod-dataset-1", `"`+viewer+`"`))), 400, "invalid_request", "invalid availableResource"},
		{"an object", http.MethodPost, "/v1/token", formType, opts(options(rule(bucket+"/objects/a.csv", `"`+viewer+`"`))), 400, "invalid_request", "invalid availableResource"},
		{"bucket in capitals", http.MethodPost, "/v1/token", formType, opts(options(rule("//storage.googleapis.com/projects/_/buckets/Prod", `"`+viewer+`"`))), 400, "invalid_request", "invalid bucket name"},
		{"bucket too short", http.MethodPost, "/v1/token", formType, opts(options(rule("//storage.googleapis.com/projects/_/buckets/ab", `"`+viewer+`"`))), 400, "invalid_request", "invalid bucket name"},
		{"bucket too long", http.MethodPost, "/v1/token", formType, opts(options(rule("//storage.googleapis.com/projects/_/buckets/"+strings.Repeat("a", 64), `"`+viewer+`"`))), 400, "invalid_request", "invalid bucket name"},
		{"bucket ends in dash", http.MethodPost, "/v1/token", formType, opts(options(rule("//storage.googleapis.com/projects/_/buckets/data-", `"`+viewer+`"`))), 400, "invalid_request", "invalid bucket name"},
		{"bucket an IP", http.MethodPost, "/v1/token", formType, opts(options(rule("//storage.googleapis.com/projects/_/buckets/192.168.5.4", `"`+viewer+`"`))), 400, "invalid_request", "invalid bucket name"},
		{"bucket with google", http.MethodPost, "/v1/token", formType, opts(options(rule("//storage.googleapis.com/projects/_/buckets/my-google-data", `"`+viewer+`"`))), 400, "invalid_request", "invalid bucket name"},
		{"bucket with empty part", http.MethodPost, "/v1/token", formType, opts(options(rule("//storage.googleapis.com/projects/_/buckets/a..b", `"`+viewer+`"`))), 400, "invalid_request", "invalid bucket name"},
		{"no permissions", http.MethodPost, "/v1/token", formType, opts(options(rule(bucket, ""))), 400, "invalid_request", "availablePermissions is required"},
		{"role without inRole", http.MethodPost, "/v1/token", formType, opts(options(rule(bucket, `"roles/storage.objectViewer"`))), 400, "invalid_request", "invalid permission"},
		{"a permission", http.MethodPost, "/v1/token", formType, opts(options(rule(bucket, `"storage.objects.get"`))), 400, "invalid_request", "invalid permission"},
		{"inRole without roles/", http.MethodPost, "/v1/token", formType, opts(options(rule(bucket, `"inRole:storage.objectViewer"`))), 400, "invalid_request", "invalid permission"},
		{"one bad among good", http.MethodPost, "/v1/token", formType, opts(options(rule(bucket, `"`+viewer+`",""`))), 400, "invalid_request", "invalid permission"},
		{"empty condition", http.MethodPost, "/v1/token", formType, opts(options(`{"availableResource":"` + bucket + `","availablePermissions":["` + viewer + `"],"availabilityCondition":{"title":"t","expression":" "}}`)), 400, "invalid_request", "expression is required"},
		{"unknown subject", http.MethodPost, "/v1/token", formType, with("subject_token", "ya29.forged"), 400, "invalid_grant", "invalid or has expired"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := post(t, tc.method, e.sts.URL+tc.path, tc.ctype, tc.body)
			require.Equal(t, tc.status, a.status, "%v", a.body)
			require.Equal(t, tc.code, a.body["error"], "%v", a.body)
			require.Contains(t, a.body["error_description"], tc.desc)
		})
	}
}

func TestDown(t *testing.T) {
	t.Parallel()
	e := start(t)
	sub := e.subject(t, time.Hour).AccessToken
	e.sts.SetDown(true)
	a := post(t, http.MethodPost, e.sts.URL+"/v1/token", formType, form(sub).Encode())
	require.Equal(t, http.StatusServiceUnavailable, a.status)
	require.Equal(t, "UNAVAILABLE", a.body["error"].(map[string]any)["status"])
	require.Equal(t, 1, e.sts.Calls(), "a request while down is counted")

	e.sts.SetDown(false)
	a = post(t, http.MethodPost, e.sts.URL+"/v1/token", formType, form(sub).Encode())
	require.Equal(t, http.StatusOK, a.status, "%v", a.body)
	require.Equal(t, 2, e.sts.Calls())
}

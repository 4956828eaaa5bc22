package fakecreds_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	credentials "cloud.google.com/go/iam/credentials/apiv1"
	"cloud.google.com/go/iam/credentials/apiv1/credentialspb"
	"cloud.google.com/go/storage"
	"github.com/stretchr/testify/require"

	"github.com/warden-dev/warden/internal/testing/fakecreds"
)

const gcsHost = "storage.googleapis.com"

// signer signs through the fake's SignBlob with the real client, as a broker without key files
// does.
func signer(c *credentials.IamCredentialsClient, email string) func([]byte) ([]byte, error) {
	return func(b []byte) ([]byte, error) {
		resp, err := c.SignBlob(context.Background(), &credentialspb.SignBlobRequest{Name: "projects/-/serviceAccounts/" + email, Payload: b})
		if err != nil {
			return nil, err
		}
		return resp.SignedBlob, nil
	}
}

// signURL signs with cloud.google.com/go/storage, and answers the URL and the instant it
// expires (read from the URL itself: the library takes the signing time from the wall clock,
// and the test's own clock must agree with it, not guess it).
func signURL(t *testing.T, c *credentials.IamCredentialsClient, bucket, object string, opts storage.SignedURLOptions) (*url.URL, time.Time, time.Time) {
	t.Helper()
	opts.Scheme = storage.SigningSchemeV4
	opts.GoogleAccessID = gsa
	opts.SignBytes = signer(c, gsa)
	opts.Expires = time.Now().Add(15 * time.Minute)
	s, err := storage.SignedURL(bucket, object, &opts)
	require.NoError(t, err)
	u, err := url.Parse(s)
	require.NoError(t, err)
	date, err := time.Parse("20060102T150405Z", u.Query().Get("X-Goog-Date"))
	require.NoError(t, err)
	secs, err := time.ParseDuration(u.Query().Get("X-Goog-Expires") + "s")
	require.NoError(t, err)
	return u, date, date.Add(secs)
}

func TestVerifySignedURL(t *testing.T) {
	t.Parallel()
	s, c, _ := start(t)
	key := s.PublicKey(gsa)

	for _, tc := range []struct {
		name, bucket, object string
		opts                 storage.SignedURLOptions
		host                 string
	}{
		{"PUT", "prod-dataset-1", "user=alice/sales.csv", storage.SignedURLOptions{Method: "PUT"}, gcsHost},
		{"GET, awkward name", "prod-dataset-1", "user=alice/3f9c sales+é~(1)?#%.csv", storage.SignedURLOptions{Method: "GET"}, gcsHost},
		{"query parameters", "prod-dataset-1", "a.csv", storage.SignedURLOptions{Method: "GET",
			QueryParameters: url.Values{"response-content-disposition": {`attachment; filename="a b.csv"`}, "generation": {"17"}}}, gcsHost},
		{"virtual-hosted", "prod-dataset-1", "a/b.csv", storage.SignedURLOptions{Method: "DELETE", Style: storage.VirtualHostedStyle()}, "prod-dataset-1." + gcsHost},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, date, end := signURL(t, c, tc.bucket, tc.object, tc.opts)
			require.Equal(t, tc.host, u.Host)
			ok := fakecreds.URLCheck{Method: tc.opts.Method, Host: tc.host, Key: key, Account: gsa, Now: date}
			require.NoError(t, ok.Verify(u))
			require.NoError(t, fakecreds.VerifySignedURL(u, tc.opts.Method, tc.host, key), "used right away")

			last := ok
			last.Now = end.Add(-time.Second)
			require.NoError(t, last.Verify(u), "its last second")
			expired := ok
			expired.Now = end
			require.ErrorContains(t, expired.Verify(u), "expired")
		})
	}
}

func TestVerifySignedURLTampered(t *testing.T) {
	t.Parallel()
	s, c, _ := start(t)
	key := s.PublicKey(gsa)
	u, date, _ := signURL(t, c, "prod-dataset-1", "user=alice/sales.csv", storage.SignedURLOptions{Method: "PUT"})
	check := fakecreds.URLCheck{Method: "PUT", Host: gcsHost, Key: key, Now: date}
	require.NoError(t, check.Verify(u))

	// edit returns a copy of u with its query changed.
	edit := func(f func(q url.Values)) *url.URL {
		c := *u
		q := c.Query()
		f(q)
		c.RawQuery = q.Encode()
		return &c
	}
	withPath := func(p string) *url.URL { c := *u; c.Path, c.RawPath = p, ""; return &c }
	sig := u.Query().Get("X-Goog-Signature")
	flipped := sig[:10] + map[bool]string{true: "1", false: "0"}[sig[10] == '0'] + sig[11:]

	for _, tc := range []struct {
		name  string
		u     *url.URL
		check func(c *fakecreds.URLCheck)
		want  string
	}{
		{"other object", withPath("/prod-dataset-1/user=bob/sales.csv"), nil, "does not match"},
		{"other bucket", withPath("/prod-dataset-2/user=alice/sales.csv"), nil, "does not match"},
		{"GET for PUT", u, func(c *fakecreds.URLCheck) { c.Method = "GET" }, "does not match"},
		{"other host", u, func(c *fakecreds.URLCheck) { c.Host = "evil.example.com" }, "does not match"},
		{"other key", u, func(c *fakecreds.URLCheck) { c.Key = s.PublicKey(other) }, "does not match"},
		{"other account", u, func(c *fakecreds.URLCheck) { c.Account = other }, "signed by"},
		{"no key", u, func(c *fakecreds.URLCheck) { c.Key = nil }, "no public key"},
		{"longer expiry", edit(func(q url.Values) { q.Set("X-Goog-Expires", "604800") }), nil, "does not match"},
		{"expiry over seven days", edit(func(q url.Values) { q.Set("X-Goog-Expires", "604801") }), nil, "1 to 604800"},
		{"expiry not a number", edit(func(q url.Values) { q.Set("X-Goog-Expires", "+900") }), nil, "want seconds"},
		{"later date", edit(func(q url.Values) { q.Set("X-Goog-Date", date.Add(time.Minute).Format("20060102T150405Z")) }), nil, "does not match"},
		{"bad date", edit(func(q url.Values) { q.Set("X-Goog-Date", "yesterday") }), nil, "X-Goog-Date"},
		{"flipped signature", edit(func(q url.Values) { q.Set("X-Goog-Signature", flipped) }), nil, "does not match"},
		{"short signature", edit(func(q url.Values) { q.Set("X-Goog-Signature", sig[:len(sig)-2]) }), nil, "does not match"},
		{"signature not hex", edit(func(q url.Values) { q.Set("X-Goog-Signature", "zz"+sig[2:]) }), nil, "not lowercase hex"},
		{"no signature", edit(func(q url.Values) { q.Del("X-Goog-Signature") }), nil, "X-Goog-Signature given 0 times"},
		{"two signatures", edit(func(q url.Values) { q.Add("X-Goog-Signature", sig) }), nil, "X-Goog-Signature given 2 times"},
		{"added parameter", edit(func(q url.Values) { q.Set("userProject", "other") }), nil, "does not match"},
		{"other algorithm", edit(func(q url.Values) { q.Set("X-Goog-Algorithm", "GOOG4-HMAC-SHA256") }), nil, "X-Goog-Algorithm"},
		{"credential of another account", edit(func(q url.Values) {
			q.Set("X-Goog-Credential", strings.Replace(q.Get("X-Goog-Credential"), gsa, other, 1))
		}), nil, "does not match"},
		{"credential region", edit(func(q url.Values) {
			q.Set("X-Goog-Credential", strings.Replace(q.Get("X-Goog-Credential"), "/auto/", "/us-east1/", 1))
		}), nil, "X-Goog-Credential"},
		{"credential of another day", edit(func(q url.Values) {
			q.Set("X-Goog-Credential", gsa+"/"+date.AddDate(0, 0, 1).Format("20060102")+"/auto/storage/goog4_request")
		}), nil, "credential date"},
		{"no host signed", edit(func(q url.Values) { q.Set("X-Goog-SignedHeaders", "content-type") }),
			func(c *fakecreds.URLCheck) { c.Headers = http.Header{"Content-Type": {"text/csv"}} }, "does not include host"},
		{"signed headers unsorted", edit(func(q url.Values) { q.Set("X-Goog-SignedHeaders", "host;content-type") }), nil, "sorted"},
		{"signed header without value", edit(func(q url.Values) { q.Set("X-Goog-SignedHeaders", "content-type;host") }), nil, "no value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := check
			if tc.check != nil {
				tc.check(&c)
			}
			require.ErrorContains(t, c.Verify(tc.u), tc.want)
		})
	}
}

// TestVerifySignedURLHeaders: a URL signed with a Content-Type holds only with that header.
func TestVerifySignedURLHeaders(t *testing.T) {
	t.Parallel()
	s, c, _ := start(t)
	key := s.PublicKey(gsa)
	u, date, _ := signURL(t, c, "prod-dataset-1", "a.csv", storage.SignedURLOptions{Method: "PUT", ContentType: "text/csv"})
	require.Equal(t, "content-type;host", u.Query().Get("X-Goog-SignedHeaders"))

	check := fakecreds.URLCheck{Method: "PUT", Host: gcsHost, Key: key, Now: date, Headers: http.Header{"Content-Type": {"text/csv"}}}
	require.NoError(t, check.Verify(u))
	check.Headers.Set("Content-Type", "  text/csv ")
	require.NoError(t, check.Verify(u), "whitespace around a value is not signed")
	check.Headers.Set("Content-Type", "application/octet-stream")
	require.ErrorContains(t, check.Verify(u), "does not match")
	require.ErrorContains(t, fakecreds.VerifySignedURL(u, "PUT", gcsHost, key), `header "content-type" is signed but no value`)
}

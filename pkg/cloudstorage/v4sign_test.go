package cloudstorage

import (
	"crypto/sha256"
	"net/url"
	"strconv"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The broker's V4 signer replaced cloud.google.com/go/storage's SignedURL (see v4sign.go): for
// every kind of name and host, both must give the same URL byte for byte (the library, only
// linked into tests, is the reference).
func TestSignV4MatchesTheLibrary(t *testing.T) {
	sign := func(b []byte) ([]byte, error) { s := sha256.Sum256(b); return s[:], nil } // deterministic
	for _, tc := range []struct{ object, method, host string }{
		{"batch-1/part 1.csv", "PUT", ""},
		{"a+b=c&d?e#f", "GET", "storage.googleapis.com"},
		{"ünïcode/☃/x~y*z'(!)", "DELETE", "https://storage.example.com"},
		{"plain", "head", "http://127.0.0.1:4443"},
		{"trailing/", "GET", "localhost:9000"},
		{"", "GET", ""},
	} {
		for _, insecure := range []bool{false, true} {
			lib, err := storage.SignedURL("acme-data", tc.object, &storage.SignedURLOptions{
				GoogleAccessID: "org@p.iam.gserviceaccount.com", Scheme: storage.SigningSchemeV4, Method: tc.method,
				Expires: time.Now().Add(15 * time.Minute), Hostname: tc.host, Insecure: insecure, SignBytes: sign,
			})
			require.NoError(t, err)
			// The library signs at its own clock: sign again at the date and lifetime it wrote.
			u, err := url.Parse(lib)
			require.NoError(t, err)
			now, err := time.Parse("20060102T150405Z", u.Query().Get("X-Goog-Date"))
			require.NoError(t, err)
			secs, err := strconv.Atoi(u.Query().Get("X-Goog-Expires"))
			require.NoError(t, err)
			ours, err := v4{Bucket: "acme-data", Object: tc.object, Method: tc.method, Account: "org@p.iam.gserviceaccount.com",
				Host: tc.host, Insecure: insecure, Now: now, Expires: now.Add(time.Duration(secs) * time.Second), Sign: sign}.url()
			require.NoError(t, err)
			assert.Equal(t, lib, ours, "%+v insecure=%v", tc, insecure)
		}
	}
}

func TestSignV4Refuses(t *testing.T) {
	now := time.Now()
	ok := v4{Bucket: "b", Object: "o", Method: "GET", Account: "a", Now: now, Expires: now.Add(time.Hour),
		Sign: func(b []byte) ([]byte, error) { return b[:1], nil }}
	_, err := ok.url()
	require.NoError(t, err)
	for name, mut := range map[string]func(*v4){
		"no account":         func(r *v4) { r.Account = "" },
		"no bucket":          func(r *v4) { r.Bucket = "" },
		"already expired":    func(r *v4) { r.Expires = now },
		"more than 7 days":   func(r *v4) { r.Expires = now.Add(v4MaxLifetime + time.Second) },
		"signer unavailable": func(r *v4) { r.Sign = func([]byte) ([]byte, error) { return nil, ErrUnavailable } },
	} {
		r := ok
		mut(&r)
		_, err := r.url()
		assert.Error(t, err, name)
	}
}

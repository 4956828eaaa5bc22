package fakecreds

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Cloud Storage V4 signing (https://cloud.google.com/storage/docs/authentication/signatures),
// as Google checks it, so that a test can tell a URL Cloud Storage would honour from one it
// would refuse without a Cloud Storage to ask.
const (
	v4Algorithm   = "GOOG4-RSA-SHA256"
	v4DateFormat  = "20060102T150405Z"
	v4MaxExpires  = 7 * 24 * 60 * 60 // seconds: V4 URLs live at most seven days
	unsignedBody  = "UNSIGNED-PAYLOAD"
	contentSHAHdr = "x-goog-content-sha256"
)

// The query parameters V4 signing adds, each exactly once.
var v4Params = []string{"X-Goog-Algorithm", "X-Goog-Credential", "X-Goog-Date", "X-Goog-Expires", "X-Goog-SignedHeaders", "X-Goog-Signature"}

var (
	digitsRe = regexp.MustCompile(`^[0-9]{1,7}$`)
	hexRe    = regexp.MustCompile(`^[0-9a-f]+$`)
)

// URLCheck is what a V4 signed URL must have been signed for.
type URLCheck struct {
	Method string // the HTTP method the URL will be used with
	// Host is the Host header the request will carry (storage.googleapis.com, or
	// BUCKET.storage.googleapis.com for virtual-hosted URLs). It is given apart from the URL so
	// a test can send the request elsewhere (a local fake) and still check what was signed.
	Host string
	// Headers holds the values of the signed headers other than host (Content-Type, x-goog-*),
	// as the request will carry them. A signed header without a value here fails the check:
	// the URL would only work with a header the test cannot vouch for.
	Headers http.Header
	Key     *rsa.PublicKey // the signing account's public key (Server.PublicKey)
	Account string         // when set, the account X-Goog-Credential must name
	Now     time.Time      // when the URL is used; zero means time.Now()
}

// VerifySignedURL checks a Cloud Storage V4 signed URL as Cloud Storage would for a request
// with method and Host header host, signed by pub's private key, used now: the canonical request
// is rebuilt from the URL, its signature checked, and X-Goog-Date + X-Goog-Expires must not
// have passed. Only host may be signed: URLCheck takes the values of other signed headers.
func VerifySignedURL(u *url.URL, method string, host string, pub *rsa.PublicKey) error {
	return URLCheck{Method: method, Host: host, Key: pub}.Verify(u)
}

// Verify checks u against c (see VerifySignedURL).
func (c URLCheck) Verify(u *url.URL) error {
	if c.Key == nil {
		return errors.New("signed URL: no public key to check with")
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return fmt.Errorf("signed URL: malformed query: %w", err)
	}
	p := map[string]string{}
	for _, k := range v4Params {
		if n := len(q[k]); n != 1 {
			return fmt.Errorf("signed URL: %s given %d times, want once", k, n)
		}
		p[k] = q.Get(k)
	}
	if p["X-Goog-Algorithm"] != v4Algorithm {
		return fmt.Errorf("signed URL: X-Goog-Algorithm %q, want %s", p["X-Goog-Algorithm"], v4Algorithm)
	}
	date, err := time.Parse(v4DateFormat, p["X-Goog-Date"])
	if err != nil {
		return fmt.Errorf("signed URL: X-Goog-Date %q: want YYYYMMDD'T'HHMMSS'Z'", p["X-Goog-Date"])
	}
	// X-Goog-Credential is ACCOUNT/DATE/LOCATION/storage/goog4_request.
	cred := strings.Split(p["X-Goog-Credential"], "/")
	if len(cred) != 5 || cred[0] == "" || cred[2] != "auto" || cred[3] != "storage" || cred[4] != "goog4_request" {
		return fmt.Errorf("signed URL: X-Goog-Credential %q: want ACCOUNT/DATE/auto/storage/goog4_request", p["X-Goog-Credential"])
	}
	if cred[1] != date.Format("20060102") {
		return fmt.Errorf("signed URL: credential date %s is not the day of X-Goog-Date %s", cred[1], p["X-Goog-Date"])
	}
	if c.Account != "" && cred[0] != c.Account {
		return fmt.Errorf("signed URL: signed by %s, want %s", cred[0], c.Account)
	}
	if !digitsRe.MatchString(p["X-Goog-Expires"]) {
		return fmt.Errorf("signed URL: X-Goog-Expires %q: want seconds", p["X-Goog-Expires"])
	}
	expires, _ := strconv.Atoi(p["X-Goog-Expires"])
	if expires < 1 || expires > v4MaxExpires {
		return fmt.Errorf("signed URL: X-Goog-Expires %d: want 1 to %d seconds", expires, v4MaxExpires)
	}
	sig := p["X-Goog-Signature"]
	if !hexRe.MatchString(sig) || len(sig)%2 != 0 {
		return errors.New("signed URL: X-Goog-Signature is not lowercase hex")
	}
	signature, _ := hex.DecodeString(sig)

	headers, signed, payload, err := c.canonicalHeaders(p["X-Goog-SignedHeaders"])
	if err != nil {
		return err
	}
	scope := strings.Join(cred[1:], "/")
	canonical := strings.Join([]string{
		c.Method,
		canonicalPath(u),
		canonicalQuery(q),
		headers, // each header ends with a newline, so this leaves the blank line Google's format has
		signed,
		payload,
	}, "\n")
	digest := sha256.Sum256([]byte(canonical))
	toSign := v4Algorithm + "\n" + p["X-Goog-Date"] + "\n" + scope + "\n" + hex.EncodeToString(digest[:])
	sum := sha256.Sum256([]byte(toSign))
	if err := rsa.VerifyPKCS1v15(c.Key, crypto.SHA256, sum[:], signature); err != nil {
		return fmt.Errorf("signed URL: the signature does not match the request (%s %s, host %s): %w", c.Method, u.EscapedPath(), c.Host, err)
	}

	now := c.Now
	if now.IsZero() {
		now = time.Now()
	}
	if end := date.Add(time.Duration(expires) * time.Second); !now.Before(end) {
		return fmt.Errorf("signed URL: expired at %s", end.UTC().Format(time.RFC3339))
	}
	return nil
}

// canonicalHeaders lists the signed headers with their values ("name:value\n" each, sorted by
// name), the signed-headers line, and the payload hash the request vouches for.
func (c URLCheck) canonicalHeaders(list string) (headers, signed, payload string, err error) {
	names := strings.Split(list, ";")
	hasHost := false
	var b strings.Builder
	payload = unsignedBody
	for i, n := range names {
		if n == "" || n != strings.ToLower(n) {
			return "", "", "", fmt.Errorf("signed URL: X-Goog-SignedHeaders %q: want lowercase names separated by ';'", list)
		}
		if i > 0 && names[i-1] >= n {
			return "", "", "", fmt.Errorf("signed URL: X-Goog-SignedHeaders %q: want names sorted, each once", list)
		}
		var v string
		if n == "host" {
			hasHost = true
			v = c.Host
		} else {
			vs := c.Headers.Values(n)
			if len(vs) == 0 {
				return "", "", "", fmt.Errorf("signed URL: header %q is signed but no value for it was given", n)
			}
			v = strings.Join(vs, ",")
		}
		// Google trims a value and folds its inner whitespace to single spaces.
		v = strings.Join(strings.Fields(v), " ")
		if n == contentSHAHdr {
			payload = v
		}
		b.WriteString(n + ":" + v + "\n")
	}
	if !hasHost {
		return "", "", "", fmt.Errorf("signed URL: X-Goog-SignedHeaders %q does not include host", list)
	}
	return b.String(), list, payload, nil
}

// canonicalPath is the URL's path with each segment percent-encoded except the unreserved
// characters (A-Z a-z 0-9 - . _ ~), '/' kept as the separator.
func canonicalPath(u *url.URL) string {
	segs := strings.Split(u.EscapedPath(), "/")
	for i, s := range segs {
		if d, err := url.PathUnescape(s); err == nil {
			s = d
		}
		segs[i] = v4Escape(s)
	}
	p := strings.Join(segs, "/")
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	return p
}

// canonicalQuery is every query parameter but the signature, sorted by name, names and values
// percent-encoded as canonicalPath encodes.
func canonicalQuery(q url.Values) string {
	c := url.Values{}
	for k, v := range q {
		if k != "X-Goog-Signature" {
			c[k] = v
		}
	}
	return strings.ReplaceAll(c.Encode(), "+", "%20")
}

func v4Escape(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }

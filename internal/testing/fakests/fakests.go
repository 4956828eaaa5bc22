// Package fakests is an in-process Google Security Token Service for tests and the demo: the
// token exchange Warden uses to downscope a service account's access token to a Credential
// Access Boundary (POST https://sts.googleapis.com/v1/token, as golang.org/x/oauth2/google/downscope
// sends it). Google offers no emulator of STS, and a fake that accepted anything would hide a
// broker that asks for too much, so this one checks every field the way STS does and answers
// STS's error shape, and it remembers the boundary of each token it issues (Boundary) so that a
// test can assert exactly what a downscoped token may do.
//
// The subject token must be one a Subjects (the fakecreds server) minted and that has not
// expired; the issued token expires with it, as STS does for service-account tokens.
package fakests

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/warden-dev/warden/internal/testing/fakecreds"
)

// The values of the token-exchange fields that downscoping takes.
const (
	GrantType       = "urn:ietf:params:oauth:grant-type:token-exchange"
	AccessTokenType = "urn:ietf:params:oauth:token-type:access_token"
)

// Limits STS applies to a request: at most 10 rules in a boundary (documented), and a bound on
// the body so a runaway client is refused rather than buffered.
const (
	MaxRules   = 10
	MaxBodyLen = 64 << 10
)

// Subjects tells whether a subject token is a live access token, and whose: the fakecreds
// server implements it.
type Subjects interface {
	Lookup(token string) (fakecreds.TokenInfo, bool)
}

// Rule is one access boundary rule of an issued token.
type Rule struct {
	Resource    string   // //storage.googleapis.com/projects/_/buckets/NAME
	Permissions []string // inRole:roles/...
	Granted     []string // the permissions those roles hold (storage.objects.get, ...), sorted
	Expression  string   // the availability condition's CEL expression, "" for none
}

// Issued is what the server remembers of a downscoped token.
type Issued struct {
	Account string // the service account the subject token belonged to
	Rules   []Rule
	Expiry  time.Time
}

// Server is the fake. It is an http.Handler too, for a test that mounts it elsewhere.
type Server struct {
	// Now, when set, is the server's clock (the issued token's lifetime); set it before the
	// first request, and to the same clock as the Subjects', to move time without sleeping.
	// Nil means time.Now.
	Now func() time.Time

	subjects Subjects

	mu     sync.Mutex
	issued map[string]Issued
	custom map[string][]string // custom roles (DefineRole)
	calls  int
	down   bool

	srv *http.Server
	URL string // http://127.0.0.1:PORT; the token endpoint is URL + "/v1/token"
}

// Start serves on 127.0.0.1 (plain HTTP: the client is pointed at the URL), checking subject
// tokens with subjects.
func Start(subjects Subjects) (*Server, error) {
	s := &Server{subjects: subjects, issued: map[string]Issued{}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.URL = "http://" + l.Addr().String()
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(l) }()
	return s, nil
}

// Close ends the server.
func (s *Server) Close() { _ = s.srv.Close() }

// String describes the server for logs.
func (s *Server) String() string { return "fake STS at " + s.URL }

// SetDown makes every request fail with 503, as during an outage.
func (s *Server) SetDown(down bool) {
	s.mu.Lock()
	s.down = down
	s.mu.Unlock()
}

// Calls counts the requests the server received, whatever it answered: tests use it to see
// that a cache spared an exchange, or that a client retried.
func (s *Server) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// Boundary is what a token the server issued may do, and for whom; false for a token it did
// not issue. Expired tokens are still answered (with their Expiry), so a test can inspect what
// was issued after moving the clock.
func (s *Server) Boundary(token string) (Issued, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	is, ok := s.issued[token]
	if !ok {
		return Issued{}, false
	}
	is.Rules = slices.Clone(is.Rules)
	for i := range is.Rules {
		is.Rules[i].Permissions = slices.Clone(is.Rules[i].Permissions)
		is.Rules[i].Granted = slices.Clone(is.Rules[i].Granted)
	}
	return is, true
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// stsError is STS's answer to a refused exchange (RFC 6749 section 5.2, as STS spells it).
type stsError struct {
	status int
	Code   string `json:"error"`
	Desc   string `json:"error_description"`
}

func (e *stsError) Error() string { return e.Code + ": " + e.Desc }

func invalidRequest(format string, args ...any) *stsError {
	return &stsError{status: http.StatusBadRequest, Code: "invalid_request", Desc: fmt.Sprintf(format, args...)}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.calls++
	down := s.down
	s.mu.Unlock()
	if down {
		// An outage is answered by Google's front end, in the Google API error shape.
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"error": map[string]any{
			"code": http.StatusServiceUnavailable, "message": "The service is currently unavailable.", "status": "UNAVAILABLE"}})
		return
	}
	if r.URL.Path != "/v1/token" {
		writeJSON(w, http.StatusNotFound, &stsError{Code: "not_found", Desc: "no such endpoint: " + r.URL.Path})
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, invalidRequest("method %s not allowed: the token endpoint takes POST", r.Method))
		return
	}
	tok, is, err := s.exchange(r)
	if err != nil {
		var se *stsError
		if !errors.As(err, &se) {
			se = &stsError{status: http.StatusInternalServerError, Code: "server_error", Desc: err.Error()}
		}
		writeJSON(w, se.status, se)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token":      tok,
		"issued_token_type": AccessTokenType,
		"token_type":        "Bearer",
		"expires_in":        int(is.Expiry.Sub(s.now()) / time.Second),
	})
}

// The form fields a downscoping exchange has, each at most once. audience and scope belong to
// other exchanges (workload identity federation): STS takes them empty, as the generic
// exchange clients send them.
var (
	requiredFields = []string{"grant_type", "subject_token_type", "requested_token_type", "subject_token", "options"}
	emptyFields    = []string{"audience", "scope"}
)

// exchange checks a request and issues a token.
func (s *Server) exchange(r *http.Request) (string, Issued, error) {
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || ct != "application/x-www-form-urlencoded" {
		return "", Issued{}, invalidRequest("unsupported Content-Type %q: want application/x-www-form-urlencoded", r.Header.Get("Content-Type"))
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyLen+1))
	if err != nil {
		return "", Issued{}, invalidRequest("reading the request: %v", err)
	}
	if len(body) > MaxBodyLen {
		return "", Issued{}, &stsError{status: http.StatusRequestEntityTooLarge, Code: "invalid_request", Desc: fmt.Sprintf("request body over %d bytes", MaxBodyLen)}
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return "", Issued{}, invalidRequest("malformed form body: %v", err)
	}
	for k, v := range form {
		switch {
		case slices.Contains(requiredFields, k):
		case slices.Contains(emptyFields, k):
			if len(v) != 1 || v[0] != "" {
				return "", Issued{}, invalidRequest("%q is not supported for a downscoping exchange", k)
			}
		default:
			return "", Issued{}, invalidRequest("unknown parameter %q", k)
		}
		if len(v) > 1 {
			return "", Issued{}, invalidRequest("parameter %q given %d times", k, len(v))
		}
	}
	for _, k := range requiredFields {
		if form.Get(k) == "" {
			return "", Issued{}, invalidRequest("missing required parameter %q", k)
		}
	}
	if g := form.Get("grant_type"); g != GrantType {
		return "", Issued{}, &stsError{status: http.StatusBadRequest, Code: "unsupported_grant_type", Desc: fmt.Sprintf("invalid grant_type %q: want %s", g, GrantType)}
	}
	for _, k := range []string{"subject_token_type", "requested_token_type"} {
		if v := form.Get(k); v != AccessTokenType {
			return "", Issued{}, invalidRequest("invalid %s %q: want %s", k, v, AccessTokenType)
		}
	}
	rules, err := parseOptions(form.Get("options"))
	if err != nil {
		return "", Issued{}, err
	}
	for i := range rules {
		granted, unknown, ok := s.permissionsOf(rules[i].Permissions)
		if !ok {
			return "", Issued{}, invalidRequest("options: rule %d: role %s does not exist or cannot be used in an access boundary", i, unknown)
		}
		rules[i].Granted = granted
	}

	info, ok := s.subjects.Lookup(form.Get("subject_token"))
	if !ok {
		return "", Issued{}, &stsError{status: http.StatusBadRequest, Code: "invalid_grant", Desc: "The subject token is invalid or has expired."}
	}
	// expires_in counts whole seconds: a subject with less than one left is as good as expired.
	if info.Expiry.Sub(s.now()) < time.Second {
		return "", Issued{}, &stsError{status: http.StatusBadRequest, Code: "invalid_grant", Desc: "The subject token is invalid or has expired."}
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	tok := "ya29.fake-downscoped-" + base64.RawURLEncoding.EncodeToString(b)
	is := Issued{Account: info.Account, Rules: rules, Expiry: info.Expiry}
	s.mu.Lock()
	s.issued[tok] = is
	s.mu.Unlock()
	return tok, is, nil
}

// The options JSON. accessBoundary is what downscoping sends; userProject (the project to
// bill) is the one other option STS documents. Any other key, at any level, is refused: a typo
// would otherwise make a boundary silently wider.
type options struct {
	AccessBoundary *struct {
		AccessBoundaryRules []struct {
			AvailableResource     *string  `json:"availableResource"`
			AvailablePermissions  []string `json:"availablePermissions"`
			AvailabilityCondition *struct {
				Expression  string `json:"expression"`
				Title       string `json:"title"`
				Description string `json:"description"`
			} `json:"availabilityCondition"`
		} `json:"accessBoundaryRules"`
	} `json:"accessBoundary"`
	UserProject string `json:"userProject"`
}

var (
	resourceRe   = regexp.MustCompile(`^//storage\.googleapis\.com/projects/_/buckets/([^/]+)$`)
	permissionRe = regexp.MustCompile(`^inRole:(roles|projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/roles|organizations/[0-9]+/roles)/[A-Za-z0-9_.]{1,100}$`)
)

func parseOptions(raw string) ([]Rule, error) {
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.DisallowUnknownFields()
	var o options
	if err := dec.Decode(&o); err != nil {
		return nil, invalidRequest("malformed options: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, invalidRequest("malformed options: data after the JSON object")
	}
	if o.AccessBoundary == nil {
		return nil, invalidRequest("options: accessBoundary is required")
	}
	n := len(o.AccessBoundary.AccessBoundaryRules)
	if n == 0 || n > MaxRules {
		return nil, invalidRequest("options: the access boundary must have 1 to %d rules, has %d", MaxRules, n)
	}
	rules := make([]Rule, 0, n)
	for i, r := range o.AccessBoundary.AccessBoundaryRules {
		if r.AvailableResource == nil || *r.AvailableResource == "" {
			return nil, invalidRequest("options: rule %d: availableResource is required", i)
		}
		m := resourceRe.FindStringSubmatch(*r.AvailableResource)
		if m == nil {
			return nil, invalidRequest("options: rule %d: invalid availableResource %q: want //storage.googleapis.com/projects/_/buckets/BUCKET", i, *r.AvailableResource)
		}
		if err := validBucket(m[1]); err != nil {
			return nil, invalidRequest("options: rule %d: invalid bucket name %q: %v", i, m[1], err)
		}
		if len(r.AvailablePermissions) == 0 {
			return nil, invalidRequest("options: rule %d: availablePermissions is required", i)
		}
		for _, p := range r.AvailablePermissions {
			if !permissionRe.MatchString(p) {
				return nil, invalidRequest("options: rule %d: invalid permission %q: want inRole:roles/ROLE", i, p)
			}
		}
		rule := Rule{Resource: *r.AvailableResource, Permissions: slices.Clone(r.AvailablePermissions)}
		if c := r.AvailabilityCondition; c != nil {
			if strings.TrimSpace(c.Expression) == "" {
				return nil, invalidRequest("options: rule %d: availabilityCondition.expression is required", i)
			}
			rule.Expression = c.Expression
		}
		rules = append(rules, rule)
	}
	return rules, nil
}

// validBucket applies Cloud Storage's bucket naming rules: 3 to 63 characters (222 with dots,
// 63 between them), lowercase letters, digits, '-', '_' and '.', starting and ending with a
// letter or digit, not an IP address, not starting with "goog" and not containing "google".
func validBucket(name string) error {
	maxLen := 63
	if strings.Contains(name, ".") {
		maxLen = 222
	}
	if len(name) < 3 || len(name) > maxLen {
		return fmt.Errorf("length %d not in 3..%d", len(name), maxLen)
	}
	for _, c := range []byte(name) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("character %q not allowed", c)
		}
	}
	alnum := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }
	if !alnum(name[0]) || !alnum(name[len(name)-1]) {
		return errors.New("must start and end with a letter or digit")
	}
	for _, part := range strings.Split(name, ".") {
		if part == "" || len(part) > 63 {
			return errors.New("each dot-separated part must have 1 to 63 characters")
		}
	}
	if net.ParseIP(name) != nil {
		return errors.New("must not be an IP address")
	}
	if strings.HasPrefix(name, "goog") || strings.Contains(name, "google") {
		return errors.New(`must not start with "goog" or contain "google"`)
	}
	return nil
}

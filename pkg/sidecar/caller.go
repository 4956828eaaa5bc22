package sidecar

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/warden-dev/warden/pkg/grants"
	"github.com/warden-dev/warden/pkg/policy"
	"github.com/warden-dev/warden/pkg/sidecarapi"
)

// CallerHeader names the caller when the app vouches for it.
const CallerHeader = sidecarapi.CallerHeader

// CallerResolver establishes on whose behalf a request is made.
type CallerResolver interface {
	Caller(r *http.Request) (grants.Caller, error)
}

// HeaderCallers trusts the app: X-Warden-Caller names the user, its absence means the owner
// itself. The app is owner code that passed review, as in the original service; a workspace
// acts only for its owner.
type HeaderCallers struct {
	Owner     string
	Workspace bool
}

func (h HeaderCallers) Caller(r *http.Request) (grants.Caller, error) {
	v := r.Header.Values(CallerHeader)
	switch {
	case len(v) == 0 || (len(v) == 1 && v[0] == ""):
		return grants.Caller{ServiceAccount: h.Owner}, nil
	case len(v) > 1:
		return grants.Caller{}, fmt.Errorf("%w: %s given more than once", errCaller, CallerHeader)
	}
	if err := policy.ValidUser(v[0]); err != nil {
		return grants.Caller{}, fmt.Errorf("%w: %s: %v", errCaller, CallerHeader, err)
	}
	if h.Workspace {
		return grants.Caller{}, fmt.Errorf("%w: a workspace acts only for its owner; drop %s", errCallerScoped, CallerHeader)
	}
	return grants.Caller{User: v[0]}, nil
}

// JWTCallers requires proof: the caller is the subject of a JWT from the platform's OIDC issuer
// (Authorization: Bearer), verified against the issuer's JWKS, with issuer, audience and expiry
// checked. Requests without a token act for the owner; X-Warden-Caller is refused, so app code
// cannot name a caller it holds no token for.
type JWTCallers struct {
	Owner       string
	Workspace   bool
	Issuer      string
	Audience    string
	UserClaim   string // default "sub"
	GroupsClaim string // default "groups"
	Keys        *KeySet
	Now         func() time.Time
}

var signatureAlgorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512, jose.ES256, jose.ES384, jose.ES512, jose.EdDSA,
}

func (j *JWTCallers) Caller(r *http.Request) (grants.Caller, error) {
	if r.Header.Get(CallerHeader) != "" {
		return grants.Caller{}, fmt.Errorf("%w: this sidecar takes the caller from a signed token (Authorization: Bearer), not from %s", errCaller, CallerHeader)
	}
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return grants.Caller{ServiceAccount: j.Owner}, nil
	}
	raw, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || raw == "" {
		return grants.Caller{}, fmt.Errorf("%w: Authorization must be 'Bearer <jwt>'", errCallerToken)
	}
	tok, err := jwt.ParseSigned(raw, signatureAlgorithms)
	if err != nil {
		return grants.Caller{}, fmt.Errorf("%w: %v", errCallerToken, err)
	}
	keys, err := j.Keys.keysFor(r.Context(), tok)
	if err != nil {
		return grants.Caller{}, fmt.Errorf("%w: %v", errCallerToken, err)
	}
	var std jwt.Claims
	custom := map[string]any{}
	var verr error
	for _, k := range keys {
		if verr = tok.Claims(k, &std, &custom); verr == nil {
			break
		}
	}
	if verr != nil {
		return grants.Caller{}, fmt.Errorf("%w: signature: %v", errCallerToken, verr)
	}
	now := time.Now
	if j.Now != nil {
		now = j.Now
	}
	if std.Expiry == nil {
		return grants.Caller{}, fmt.Errorf("%w: token has no expiry", errCallerToken)
	}
	if err := std.ValidateWithLeeway(jwt.Expected{Issuer: j.Issuer, AnyAudience: jwt.Audience{j.Audience}, Time: now()}, 30*time.Second); err != nil {
		return grants.Caller{}, fmt.Errorf("%w: %v", errCallerToken, err)
	}
	claim := j.UserClaim
	if claim == "" {
		claim = "sub"
	}
	user, _ := custom[claim].(string)
	if err := policy.ValidUser(user); err != nil {
		return grants.Caller{}, fmt.Errorf("%w: claim %q: %v", errCallerToken, claim, err)
	}
	c := grants.Caller{User: user}
	gclaim := j.GroupsClaim
	if gclaim == "" {
		gclaim = "groups"
	}
	if gs, ok := custom[gclaim].([]any); ok {
		for _, g := range gs {
			if s, ok := g.(string); ok && policy.ValidUser(s) == nil {
				c.Groups = append(c.Groups, s)
			}
		}
	}
	if j.Workspace {
		return grants.Caller{}, fmt.Errorf("%w: a workspace acts only for its owner", errCallerScoped)
	}
	return c, nil
}

// KeySet is a JWKS from a file or URL. Keys are re-read when a token names a key id the set does
// not have (the issuer rotated), at most once a minute.
type KeySet struct {
	Source string // file path or https URL
	HTTP   *http.Client

	mu     sync.Mutex
	set    jose.JSONWebKeySet
	loaded time.Time
}

// NewKeySet loads the set once, so a wrong path or URL fails at start.
func NewKeySet(ctx context.Context, source string, client *http.Client) (*KeySet, error) {
	k := &KeySet{Source: source, HTTP: client}
	if k.HTTP == nil {
		k.HTTP = &http.Client{Timeout: 10 * time.Second}
	}
	if err := k.reload(ctx); err != nil {
		return nil, err
	}
	return k, nil
}

func (k *KeySet) reload(ctx context.Context) error {
	var data []byte
	var err error
	if strings.HasPrefix(k.Source, "https://") || strings.HasPrefix(k.Source, "http://") {
		var req *http.Request
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, k.Source, nil)
		if err != nil {
			return err
		}
		var resp *http.Response
		if resp, err = k.HTTP.Do(req); err != nil {
			return fmt.Errorf("fetching JWKS: %w", err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("fetching JWKS: %s", resp.Status)
		}
		data, err = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	} else {
		data, err = os.ReadFile(k.Source)
	}
	if err != nil {
		return fmt.Errorf("reading JWKS: %w", err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(data, &set); err != nil {
		return fmt.Errorf("parsing JWKS %s: %w", k.Source, err)
	}
	for _, key := range set.Keys {
		if !key.IsPublic() {
			return fmt.Errorf("JWKS %s holds a private key; publish public keys only", k.Source)
		}
	}
	if len(set.Keys) == 0 {
		return fmt.Errorf("JWKS %s has no keys", k.Source)
	}
	k.mu.Lock()
	k.set, k.loaded = set, time.Now()
	k.mu.Unlock()
	return nil
}

func (k *KeySet) keysFor(ctx context.Context, tok *jwt.JSONWebToken) ([]jose.JSONWebKey, error) {
	kid := ""
	if len(tok.Headers) > 0 {
		kid = tok.Headers[0].KeyID
	}
	find := func() []jose.JSONWebKey {
		k.mu.Lock()
		defer k.mu.Unlock()
		if kid == "" {
			return slices.Clone(k.set.Keys)
		}
		return k.set.Key(kid)
	}
	if keys := find(); len(keys) > 0 {
		return keys, nil
	}
	k.mu.Lock()
	stale := time.Since(k.loaded) > time.Minute
	k.mu.Unlock()
	if stale {
		if err := k.reload(ctx); err != nil {
			return nil, err
		}
		if keys := find(); len(keys) > 0 {
			return keys, nil
		}
	}
	return nil, fmt.Errorf("no key %q in the issuer's JWKS", kid)
}

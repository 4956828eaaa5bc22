package sidecar

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warden-dev/warden/pkg/sidecarapi"
)

type issuer struct {
	key  *rsa.PrivateKey
	kid  string
	jwks string // file
}

func newIssuer(t *testing.T) *issuer {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	is := &issuer{key: key, kid: "k1", jwks: filepath.Join(t.TempDir(), "jwks.json")}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: is.kid, Algorithm: "RS256", Use: "sig"}}}
	b, err := json.Marshal(set)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(is.jwks, b, 0o644))
	return is
}

func (is *issuer) sign(t *testing.T, key any, alg jose.SignatureAlgorithm, kid string, claims map[string]any) string {
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader(jose.HeaderKey("kid"), kid)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	require.NoError(t, err)
	tok, err := jwt.Signed(signer).Claims(claims).Serialize()
	require.NoError(t, err)
	return tok
}

func TestJWTCallers(t *testing.T) {
	is := newIssuer(t)
	keys, err := NewKeySet(context.Background(), is.jwks, nil)
	require.NoError(t, err)
	now := time.Now()
	j := &JWTCallers{Owner: "apps/svc-1", Issuer: "https://idp.example.com", Audience: "warden", UserClaim: "preferred_username", Keys: keys}
	good := func() map[string]any {
		return map[string]any{
			"iss": "https://idp.example.com", "aud": []string{"warden"}, "sub": "u-123",
			"preferred_username": "user-ds-1", "groups": []string{"analysts", "bad group!"},
			"exp": now.Add(time.Hour).Unix(), "iat": now.Unix(),
		}
	}
	resolve := func(auth, header string) (string, []string, error) {
		r := httptest.NewRequest("GET", "/v1/datasets", nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		if header != "" {
			r.Header.Set(CallerHeader, header)
		}
		c, err := j.Caller(r)
		return c.Name(), c.Groups, err
	}

	name, groups, err := resolve("Bearer "+is.sign(t, is.key, jose.RS256, is.kid, good()), "")
	require.NoError(t, err)
	assert.Equal(t, "user-ds-1", name)
	assert.Equal(t, []string{"analysts"}, groups, "malformed group names are dropped")

	name, _, err = resolve("", "")
	require.NoError(t, err)
	assert.Equal(t, "apps/svc-1", name, "no token: the app acts for its owner")

	_, _, err = resolve("", "user-ds-1")
	assert.ErrorIs(t, err, errCaller, "a bare header cannot name a caller in JWT mode")

	otherKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for name, tok := range map[string]string{
		"expired":                            is.sign(t, is.key, jose.RS256, is.kid, with(good(), "exp", now.Add(-time.Hour).Unix())),
		"no expiry":                          is.sign(t, is.key, jose.RS256, is.kid, without(good(), "exp")),
		"not yet valid":                      is.sign(t, is.key, jose.RS256, is.kid, with(good(), "nbf", now.Add(time.Hour).Unix())),
		"wrong audience":                     is.sign(t, is.key, jose.RS256, is.kid, with(good(), "aud", []string{"other"})),
		"wrong issuer":                       is.sign(t, is.key, jose.RS256, is.kid, with(good(), "iss", "https://evil.example.com")),
		"wrong key":                          is.sign(t, otherKey, jose.RS256, is.kid, good()),
		"unknown kid":                        is.sign(t, otherKey, jose.RS256, "k2", good()),
		"ec key, rsa kid":                    is.sign(t, ecKey, jose.ES256, is.kid, good()),
		"hmac with the public key as secret": is.sign(t, []byte(mustJSON(t, is.key.PublicKey)), jose.HS256, is.kid, good()),
		"missing user claim":                 is.sign(t, is.key, jose.RS256, is.kid, without(good(), "preferred_username")),
		"user claim with slash":              is.sign(t, is.key, jose.RS256, is.kid, with(good(), "preferred_username", "../../etc")),
		"alg none":                           "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJwcmVmZXJyZWRfdXNlcm5hbWUiOiJ1c2VyLWRzLTEifQ.",
		"garbage":                            "not.a.jwt",
	} {
		_, _, err := resolve("Bearer "+tok, "")
		assert.ErrorIs(t, err, errCallerToken, name)
	}
	_, _, err = resolve("Basic dXNlcjpwYXNz", "")
	assert.ErrorIs(t, err, errCallerToken)

	// Over HTTP a rejected token is a 401.
	h := newHarness(t, "apps/svc-prod-app-1", "prod", func(c *Config) {
		c.Callers = &JWTCallers{Owner: "apps/svc-prod-app-1", Issuer: "https://idp.example.com", Audience: "warden", UserClaim: "preferred_username", Keys: keys}
	})
	req, _ := http.NewRequest("GET", h.srv.URL+"/v1/datasets/prod-dataset-1/access", nil)
	req.Header.Set("Authorization", "Bearer "+is.sign(t, is.key, jose.RS256, is.kid, with(good(), "exp", now.Add(-time.Hour).Unix())))
	resp, err := h.srv.Client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 401, resp.StatusCode)
	req.Header.Set("Authorization", "Bearer "+is.sign(t, is.key, jose.RS256, is.kid, good()))
	resp, err = h.srv.Client().Do(req)
	require.NoError(t, err)
	var body sidecarapi.Access
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "user-ds-1", body.Caller.Name)
}

func TestKeySetRefusesBadSets(t *testing.T) {
	dir := t.TempDir()
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	for name, content := range map[string]string{
		"empty":   `{"keys":[]}`,
		"garbage": `{"keys":`,
		"private": mustJSON(t, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key, KeyID: "k"}}}),
	} {
		f := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(f, []byte(content), 0o644))
		_, err := NewKeySet(context.Background(), f, nil)
		assert.Error(t, err, name)
	}
	_, err := NewKeySet(context.Background(), filepath.Join(dir, "missing"), nil)
	assert.Error(t, err)
}

func with(m map[string]any, k string, v any) map[string]any { m[k] = v; return m }
func without(m map[string]any, k string) map[string]any     { delete(m, k); return m }

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

package sidecar

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warden-dev/warden/internal/httpjson"
	"github.com/warden-dev/warden/pkg/brokerapi"
	"github.com/warden-dev/warden/pkg/grants"
)

// recordingStorage plays the broker: it remembers what the sidecar forwarded and answers as
// told.
type recordingStorage struct {
	callers []grants.Caller
	err     error
}

func (r *recordingStorage) StorageCredentials(_ context.Context, req brokerapi.CredentialsRequest) (brokerapi.Credential, error) {
	r.callers = append(r.callers, req.Caller)
	return brokerapi.Credential{AccessToken: "tok", TokenType: "Bearer", ExpiresAt: time.Unix(2_000_000_000, 0), Org: req.Org, Space: req.Space,
		Access: req.Access, Bucket: "acme-lz", Prefix: "in/"}, r.err
}

func (r *recordingStorage) StorageSignedURL(_ context.Context, req brokerapi.SignedURLRequest) (brokerapi.SignedURL, error) {
	r.callers = append(r.callers, req.Caller)
	return brokerapi.SignedURL{URL: "https://storage.googleapis.com/acme-lz/in/" + req.Object, Method: req.Method, Bucket: "acme-lz", Object: "in/" + req.Object}, r.err
}

func (r *recordingStorage) StorageCommit(_ context.Context, req brokerapi.CommitRequest) (brokerapi.Commit, error) {
	r.callers = append(r.callers, req.Caller)
	return brokerapi.Commit{Org: req.Org, Space: req.Space, Bucket: "acme-lz", RootDir: "in/" + req.RootDir + "/", MessageID: "m1",
		Objects: []brokerapi.Object{{Name: "in/b1/x"}}}, r.err
}

func TestStorageEndpoints(t *testing.T) {
	rec := &recordingStorage{}
	h := newHarness(t, "apps/svc-prod-app-1", "prod", func(c *Config) { c.Storage = rec })

	status, body := h.do(http.MethodPost, brokerapi.PathStorageCredentials, "", `{"org":"acme","space":"lz","access":"upload"}`)
	require.Equal(t, 200, status, body)
	assert.Equal(t, "tok", body["access_token"])
	status, _ = h.do(http.MethodPost, brokerapi.PathStorageSignedURL, "user-ds-1", `{"org":"acme","space":"lz","object":"b1/x","method":"PUT"}`)
	require.Equal(t, 200, status)
	status, body = h.do(http.MethodPost, brokerapi.PathStorageCommit, "user-ds-2", `{"org":"acme","space":"lz","root_dir":"b1"}`)
	require.Equal(t, 200, status)
	assert.Equal(t, "m1", body["message_id"])
	assert.Equal(t, []grants.Caller{{ServiceAccount: "apps/svc-prod-app-1"}, {User: "user-ds-1"}, {User: "user-ds-2"}}, rec.callers,
		"the broker hears who the sidecar established, nothing else")

	audit := h.audit.String()
	for _, want := range []string{`"action":"storage-credentials"`, `"org":"acme"`, `"space":"lz"`, `"access":"upload"`, `"target":"gs://acme-lz/in/"`,
		`"action":"storage-signed-url"`, `"target":"gs://acme-lz/in/b1/x"`, `"action":"storage-commit"`, `1 objects, message m1`} {
		assert.Contains(t, audit, want)
	}
	assert.NotContains(t, audit, "tok\"", "tokens never reach the audit log")

	for name, c := range map[string]struct {
		path, caller, body string
		status             int
		msg                string
	}{
		"caller in the body": {brokerapi.PathStorageCredentials, "", `{"org":"acme","space":"lz","access":"read","caller":{"user":"root"}}`, 400, "not from the body"},
		"owner in the body":  {brokerapi.PathStorageCommit, "", `{"org":"acme","space":"lz","root_dir":"x","caller":{"service_account":"a/b"}}`, 400, "not from the body"},
		"unknown field":      {brokerapi.PathStorageCredentials, "", `{"org":"acme","space":"lz","access":"read","ttl":99999}`, 400, "unknown field"},
		"malformed":          {brokerapi.PathStorageSignedURL, "", `{"org":`, 400, "bad request body"},
		"two documents":      {brokerapi.PathStorageCredentials, "", `{"org":"a"}{"org":"b"}`, 400, "bad request body"},
		"bad caller header":  {brokerapi.PathStorageCredentials, "../root", `{"org":"acme","space":"lz","access":"read"}`, 400, "bad caller"},
		"oversized body":     {brokerapi.PathStorageCredentials, "", `{"org":"` + strings.Repeat("a", 2<<20) + `"}`, 413, ""},
		"wrong method (GET)": {brokerapi.PathStorageCredentials, "", "", 405, ""},
	} {
		method := http.MethodPost
		if strings.HasPrefix(name, "wrong method") {
			method = http.MethodGet
		}
		status, body := h.do(method, c.path, c.caller, c.body)
		assert.Equal(t, c.status, status, "%s: %v", name, body)
		if c.msg != "" {
			assert.Contains(t, body["error"], c.msg, name)
		}
	}
	assert.Len(t, rec.callers, 3, "no refused request reached the broker")

	// The broker's refusals reach app code with their status, code and message.
	rec.err = &brokerapi.StatusError{Status: 403, Code: httpjson.CodeForbidden, Message: "forbidden: caller user:x needs role supplier in space acme/lz (has none)"}
	status, body = h.do(http.MethodPost, brokerapi.PathStorageCredentials, "x", `{"org":"acme","space":"lz","access":"upload"}`)
	assert.Equal(t, 403, status)
	assert.Equal(t, "forbidden", body["code"])
	assert.Contains(t, body["error"], "needs role supplier")
	assert.Contains(t, h.audit.String(), `"outcome":"denied","reason":"forbidden: caller user:x needs role supplier`)
	rec.err = &brokerapi.StatusError{Status: 503, Code: httpjson.CodeUnavailable, Message: "STS down"}
	status, _ = h.do(http.MethodPost, brokerapi.PathStorageCredentials, "", `{"org":"acme","space":"lz","access":"upload"}`)
	assert.Equal(t, 503, status)
	rec.err = grants.ErrUnavailable
	status, _ = h.do(http.MethodPost, brokerapi.PathStorageCredentials, "", `{"org":"acme","space":"lz","access":"upload"}`)
	assert.Equal(t, 503, status, "the broker unreachable")
}

func TestStorageLocalMode(t *testing.T) {
	h := newHarness(t, "apps/svc-prod-app-1", "prod")
	for _, p := range []string{brokerapi.PathStorageCredentials, brokerapi.PathStorageSignedURL, brokerapi.PathStorageCommit} {
		status, body := h.do(http.MethodPost, p, "", `{}`)
		assert.Equal(t, 501, status)
		assert.Contains(t, body["error"], "--broker-url")
	}
}

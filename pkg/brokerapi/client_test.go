package brokerapi

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warden-dev/warden/pkg/grants"
)

func TestClientErrors(t *testing.T) {
	tok := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(tok, []byte("tok-1\n"), 0o600))
	var status int
	var body string
	var gotAuth string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth = r.Header.Get("Authorization")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	defer srv.Close()
	c := &Client{BaseURL: srv.URL, TokenFile: tok, HTTP: srv.Client()}
	ctx := context.Background()

	status, body = 200, `{"dataset_id":"p1","owner":{"name":"apps/prod","can_read":true},"caller":{"name":"ann","can_read":true},"snapshot":"prod/p1"}`
	d, err := c.Check(ctx, "apps/prod", grants.Caller{User: "ann"}, "p1")
	require.NoError(t, err)
	assert.True(t, d.Allowed())
	assert.Equal(t, "Bearer tok-1", gotAuth, "token read from the file, trimmed")

	_, err = c.Check(ctx, "apps/other", grants.Caller{User: "ann"}, "p1")
	assert.ErrorIs(t, err, grants.ErrUnavailable, "an answer for another owner is not trusted")

	for code, want := range map[int]error{401: grants.ErrUnavailable, 403: grants.ErrUnknownOwner, 500: grants.ErrUnavailable, 503: grants.ErrUnavailable} {
		status, body = code, `{"error":"nope","code":"x"}`
		_, err := c.Check(ctx, "apps/prod", grants.Caller{User: "ann"}, "p1")
		assert.ErrorIs(t, err, want, "status %d", code)
		assert.Contains(t, err.Error(), "nope")
	}
	status, body = 200, `{not json`
	_, err = c.Check(ctx, "apps/prod", grants.Caller{User: "ann"}, "p1")
	assert.ErrorIs(t, err, grants.ErrUnavailable)
	status, body = 200, `{}`
	_, err = c.List(ctx, "apps/prod", grants.Caller{User: "ann"})
	assert.Error(t, err)

	srv.Close()
	_, err = c.Check(ctx, "apps/prod", grants.Caller{User: "ann"}, "p1")
	assert.True(t, errors.Is(err, grants.ErrUnavailable), "broker down: %v", err)

	missing := &Client{BaseURL: "https://127.0.0.1:1", TokenFile: filepath.Join(t.TempDir(), "none"), HTTP: http.DefaultClient}
	_, err = missing.Check(ctx, "apps/prod", grants.Caller{}, "p1")
	assert.ErrorIs(t, err, grants.ErrUnavailable)
}

func TestClientIdentity(t *testing.T) {
	tok := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(tok, []byte("tok-1"), 0o600))
	var got []string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Method+" "+r.URL.Path)
		switch r.Method + " " + r.URL.Path {
		case "POST " + PathIdentityOrgs:
			_, _ = w.Write([]byte(`{"orgs":[{"name":"org1","gcp_service_account":"a@p.iam.gserviceaccount.com"}]}`))
		case "POST " + PathIdentityGCP:
			_, _ = w.Write([]byte(`{"org":"org1","gcp_service_account":"a@p.iam.gserviceaccount.com","state":"pending","written_at":"2026-11-26T10:00:00Z","bound_at":"2026-11-26T10:07:00Z"}`))
		case "DELETE " + PathIdentityGCP:
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":"no binding","code":"not_found"}`))
		}
	}))
	defer srv.Close()
	c := &Client{BaseURL: srv.URL, TokenFile: tok, HTTP: srv.Client()}
	o, err := c.Orgs(context.Background(), grants.Caller{ServiceAccount: "apps/svc"})
	require.NoError(t, err)
	assert.Equal(t, []Org{{Name: "org1", GCPServiceAccount: "a@p.iam.gserviceaccount.com"}}, o.Orgs)
	b, err := c.Bind(context.Background(), BindRequest{Org: "org1"})
	require.NoError(t, err)
	assert.Equal(t, "pending", b.State)
	assert.Equal(t, 7*60.0, b.BoundAt.Sub(b.WrittenAt).Seconds())
	err = c.Reset(context.Background())
	var se *StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, http.StatusNotFound, se.Status)
	assert.EqualValues(t, "not_found", se.Code)
	assert.Equal(t, []string{"POST " + PathIdentityOrgs, "POST " + PathIdentityGCP, "DELETE " + PathIdentityGCP}, got)
}

package httpjson

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRoundTrip(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/echo":
			assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
			assert.Equal(t, "v1", r.Header.Get("X-Test"))
			w.Header().Set("ETag", `"v3"`)
			Write(w, http.StatusCreated, map[string]string{"got": r.Method})
		case "/refused":
			WriteError(w, http.StatusForbidden, CodeForbidden, "not yours")
		case "/proxy":
			w.WriteHeader(http.StatusBadGateway)
			_, _ = w.Write([]byte("<html>bad gateway</html>"))
		case "/huge":
			_, _ = w.Write([]byte(`{"a":"` + strings.Repeat("x", MaxAnswer) + `"}`))
		}
	}))
	defer srv.Close()
	ctx := context.Background()

	ans, err := RoundTrip(ctx, nil, http.MethodPost, srv.URL+"/echo", map[string]int{"n": 1}, func(h http.Header) { h.Set("X-Test", "v1") })
	require.NoError(t, err)
	assert.True(t, ans.OK())
	assert.Equal(t, `"v3"`, ans.Header.Get("ETag"))
	var out map[string]string
	require.NoError(t, ans.Decode(&out))
	assert.Equal(t, "POST", out["got"])

	ans, err = RoundTrip(ctx, srv.Client(), http.MethodGet, srv.URL+"/refused", nil, nil)
	require.NoError(t, err, "a refusal is an answer, not a transport error")
	assert.False(t, ans.OK())
	assert.Equal(t, ErrorBody{Error: "not yours", Code: CodeForbidden}, ans.Failure("fallback"))

	ans, err = RoundTrip(ctx, srv.Client(), http.MethodGet, srv.URL+"/proxy", nil, nil)
	require.NoError(t, err)
	assert.Equal(t, http.StatusBadGateway, ans.Status)
	assert.Equal(t, "fallback", ans.Failure("fallback").Error, "a page that is not the envelope")

	ans, err = RoundTrip(ctx, srv.Client(), http.MethodGet, srv.URL+"/huge", nil, nil)
	require.NoError(t, err)
	assert.Len(t, ans.Body, MaxAnswer, "read no further than MaxAnswer")
	assert.Error(t, ans.Decode(&out), "a cut answer does not decode")
	assert.NoError(t, ans.Decode(nil), "nothing to decode into")

	_, err = RoundTrip(ctx, srv.Client(), http.MethodGet, "http://127.0.0.1:1/", nil, nil)
	assert.Error(t, err, "nothing listens")
	_, err = RoundTrip(ctx, nil, http.MethodPost, srv.URL, func() {}, nil)
	assert.Error(t, err, "a body JSON cannot encode")
}

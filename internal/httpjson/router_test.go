package httpjson

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestRouter(t *testing.T) {
	var wrapped []string
	r := NewRouter(func(pattern string, h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, req *http.Request) {
			wrapped = append(wrapped, pattern)
			h(w, req)
		}
	})
	ok := func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }
	r.Route("/v1/things/{id}", Methods{http.MethodGet: ok, http.MethodDelete: ok})
	for _, tc := range []struct {
		method, path string
		status       int
		allow, code  string
	}{
		{"GET", "/v1/things/a", 204, "", ""},
		{"HEAD", "/v1/things/a", 204, "", ""},
		{"DELETE", "/v1/things/a", 204, "", ""},
		{"PUT", "/v1/things/a", 405, "DELETE, GET", `"code":"method_not_allowed"`},
		{"GET", "/v1/other", 404, "", `"code":"not_found"`},
	} {
		w := httptest.NewRecorder()
		r.ServeHTTP(w, httptest.NewRequest(tc.method, tc.path, nil))
		assert.Equal(t, tc.status, w.Code, "%s %s", tc.method, tc.path)
		assert.Equal(t, tc.allow, w.Header().Get("Allow"), "%s %s", tc.method, tc.path)
		assert.Contains(t, w.Body.String(), tc.code)
	}
	assert.Len(t, wrapped, 4, "the 405 goes through the wrapper too; the 404 does not")
}

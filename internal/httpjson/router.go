package httpjson

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
)

// Methods are one path's handlers by HTTP method.
type Methods map[string]http.HandlerFunc

// Router is the one router style of Warden's JSON servers (the sidecar and the broker): each
// path registered once with its handlers by method; another method gets a JSON 405 naming the
// allowed ones (HEAD is GET), an unknown path a JSON 404.
type Router struct {
	mux *http.ServeMux
	// wrap wraps each path's dispatch (the sidecar's metrics, timeout and panic recovery).
	wrap func(pattern string, h http.HandlerFunc) http.HandlerFunc
}

// NewRouter returns an empty router; wrap may be nil.
func NewRouter(wrap func(pattern string, h http.HandlerFunc) http.HandlerFunc) *Router {
	r := &Router{mux: http.NewServeMux(), wrap: wrap}
	r.mux.HandleFunc("/", func(w http.ResponseWriter, req *http.Request) {
		WriteError(w, http.StatusNotFound, CodeNotFound, fmt.Sprintf("no such endpoint: %s %s", req.Method, req.URL.Path))
	})
	return r
}

// Route registers pattern (a net/http path pattern, without a method).
func (r *Router) Route(pattern string, handlers Methods) {
	allowed := slices.Sorted(maps.Keys(handlers))
	dispatch := func(w http.ResponseWriter, req *http.Request) {
		h, ok := handlers[req.Method]
		if !ok && req.Method == http.MethodHead {
			h, ok = handlers[http.MethodGet]
		}
		if !ok {
			w.Header().Set("Allow", strings.Join(allowed, ", "))
			WriteError(w, http.StatusMethodNotAllowed, CodeMethodNotAllowed, fmt.Sprintf("%s %s is not supported; use %s", req.Method, pattern, strings.Join(allowed, " or ")))
			return
		}
		h(w, req)
	}
	if r.wrap != nil {
		dispatch = r.wrap(pattern, dispatch)
	}
	r.mux.HandleFunc(pattern, dispatch)
}

// ServeHTTP routes a request.
func (r *Router) ServeHTTP(w http.ResponseWriter, req *http.Request) { r.mux.ServeHTTP(w, req) }

// Package broker is the privileged half of Warden, served by cmd/webhook over TLS. Sidecars
// call it with their pod's projected service-account token (audience "warden"); the broker
// verifies the token with a TokenReview, checks that the pod it is bound to exists, runs as that
// service account and was injected by Warden, and only then answers for the owner the token
// proves. No tenant pod ever holds more than its own token.
package broker

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/warden-dev/warden/internal/httpjson"
	"github.com/warden-dev/warden/pkg/api"
	"github.com/warden-dev/warden/pkg/grants"
	"github.com/warden-dev/warden/pkg/guard"
	"github.com/warden-dev/warden/pkg/identity"
	"github.com/warden-dev/warden/pkg/policy"
)

// Extra keys the API server puts into TokenReview results of pod-bound tokens.
const (
	extraPodName = "authentication.kubernetes.io/pod-name"
	extraPodUID  = "authentication.kubernetes.io/pod-uid"
)

// Options configure the broker.
type Options struct {
	Kube   kubernetes.Interface
	Grants grants.Source
	// Audience the sidecar tokens must carry (default "warden").
	Audience string
	// IdentityCacheTTL reuses a verified token for this long (default 10s; 0 keeps the default,
	// negative disables caching). A deleted pod's token stops working within this time.
	IdentityCacheTTL time.Duration
	Log              *slog.Logger
	// Identity binds GKE workload identities (nil: the identity endpoints answer 501).
	Identity *identity.Binder
	// OrgAdmin and AdminGroup enable PUT /v1/admin/orgs/{org} for members of that group.
	OrgAdmin   *identity.OrgAdmin
	AdminGroup string
	// Pods is the pod invariant (the admission webhooks' own): the broker answers only pods that
	// pass it, seal included. Namespaces tells whether a pod's namespace is opted in.
	Pods       *guard.Rules
	Namespaces Namespaces
}

// Namespaces looks up a namespace's labels.
type Namespaces interface {
	Labels(ctx context.Context, name string) (map[string]string, error)
}

// Server is the broker's HTTP handler.
type Server struct {
	opts Options
	mux  *http.ServeMux

	mu    sync.Mutex
	cache map[[32]byte]verified
}

// verified is an authenticated sidecar.
type verified struct {
	owner string
	pod   string
	at    time.Time
}

// errAuth is a request whose token does not identify a Warden sidecar (401); errForbidden is a
// verified pod that may not use the broker (403).
var (
	errAuth      = errors.New("unauthenticated")
	errForbidden = errors.New("forbidden")
	errBadInput  = errors.New("bad request")
	// errUnavailable is a dependency outage that is not a grant source's (TokenReview for admins).
	errUnavailable = grants.ErrUnavailable
)

// New returns a ready broker.
func New(o Options) (*Server, error) {
	if o.Kube == nil || o.Grants == nil || o.Pods == nil || o.Namespaces == nil {
		return nil, errors.New("broker: Kubernetes client, grant source, pod rules and namespace lookup are required")
	}
	if o.Audience == "" {
		o.Audience = api.TokenAudience
	}
	if o.IdentityCacheTTL == 0 {
		o.IdentityCacheTTL = 10 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	s := &Server{opts: o, mux: http.NewServeMux(), cache: map[[32]byte]verified{}}
	s.mux.HandleFunc("POST "+grants.PathCheck, s.check)
	s.mux.HandleFunc("POST "+grants.PathList, s.list)
	s.registerIdentity()
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	return s, nil
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]string{"error": msg, "code": code})
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, code := http.StatusInternalServerError, "internal"
	if st, c, ok := identityStatus(err); ok {
		status, code = st, c
	}
	switch {
	case status != http.StatusInternalServerError:
	case errors.Is(err, errAuth):
		status, code = http.StatusUnauthorized, "unauthorized"
	case errors.Is(err, errForbidden), errors.Is(err, grants.ErrUnknownOwner):
		status, code = http.StatusForbidden, "forbidden"
	case errors.Is(err, errBadInput):
		status, code = http.StatusBadRequest, "bad_request"
	case errors.Is(err, grants.ErrUnavailable):
		status, code = http.StatusServiceUnavailable, "unavailable"
	}
	level := slog.LevelWarn
	if status >= 500 {
		level = slog.LevelError
	}
	s.opts.Log.Log(r.Context(), level, "broker request refused", "path", r.URL.Path, "status", status, "error", err, "remote", r.RemoteAddr)
	writeError(w, status, code, err.Error())
}

// authenticate turns the request's bearer token into the owner of a Warden-injected pod.
func (s *Server) authenticate(ctx context.Context, r *http.Request) (verified, error) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		return verified{}, fmt.Errorf("%w: send the pod's projected service-account token as 'Authorization: Bearer'", errAuth)
	}
	key := sha256.Sum256([]byte(token))
	if s.opts.IdentityCacheTTL > 0 {
		s.mu.Lock()
		id, hit := s.cache[key]
		s.mu.Unlock()
		if hit && time.Since(id.at) < s.opts.IdentityCacheTTL {
			return id, nil
		}
	}
	id, err := s.verify(ctx, token)
	if err != nil {
		return id, err
	}
	if s.opts.IdentityCacheTTL > 0 {
		s.mu.Lock()
		if len(s.cache) > 10000 {
			s.cache = map[[32]byte]verified{}
		}
		s.cache[key] = id
		s.mu.Unlock()
	}
	return id, nil
}

func (s *Server) verify(ctx context.Context, token string) (verified, error) {
	tr, err := s.opts.Kube.AuthenticationV1().TokenReviews().Create(ctx, &authnv1.TokenReview{
		Spec: authnv1.TokenReviewSpec{Token: token, Audiences: []string{s.opts.Audience}},
	}, metav1.CreateOptions{})
	if err != nil {
		return verified{}, fmt.Errorf("%w: token review: %v", grants.ErrUnavailable, err)
	}
	st := tr.Status
	if !st.Authenticated {
		return verified{}, fmt.Errorf("%w: token not accepted: %s", errAuth, st.Error)
	}
	if !slices.Contains(st.Audiences, s.opts.Audience) {
		return verified{}, fmt.Errorf("%w: token is not for audience %q", errAuth, s.opts.Audience)
	}
	rest, ok := strings.CutPrefix(st.User.Username, "system:serviceaccount:")
	ns, sa, ok2 := strings.Cut(rest, ":")
	if !ok || !ok2 || ns == "" || sa == "" {
		return verified{}, fmt.Errorf("%w: %q is not a service account", errAuth, st.User.Username)
	}
	podName, podUID := first(st.User.Extra[extraPodName]), first(st.User.Extra[extraPodUID])
	if podName == "" || podUID == "" {
		return verified{}, fmt.Errorf("%w: the token is not bound to a pod; use the projected token Warden mounts into the sidecar", errAuth)
	}
	pod, err := s.opts.Kube.CoreV1().Pods(ns).Get(ctx, podName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return verified{}, fmt.Errorf("%w: pod %s/%s no longer exists", errAuth, ns, podName)
	case err != nil:
		return verified{}, fmt.Errorf("%w: reading pod %s/%s: %v", grants.ErrUnavailable, ns, podName, err)
	case string(pod.UID) != podUID:
		return verified{}, fmt.Errorf("%w: pod %s/%s was replaced (uid %s, token for %s)", errAuth, ns, podName, pod.UID, podUID)
	case pod.Spec.ServiceAccountName != sa:
		return verified{}, fmt.Errorf("%w: pod %s/%s runs as %q, the token is for %q", errAuth, ns, podName, pod.Spec.ServiceAccountName, sa)
	}
	if err := s.trusted(ctx, pod); err != nil {
		return verified{}, fmt.Errorf("%w: pod %s/%s: %v", errForbidden, ns, podName, err)
	}
	return verified{owner: ns + "/" + sa, pod: ns + "/" + podName, at: time.Now()}, nil
}

// trusted applies the admission webhooks' judgement to the live pod: its namespace is opted in
// (a pod made to look injected in a namespace Warden does not govern never passed admission),
// and it satisfies the pod invariant with a valid seal.
func (s *Server) trusted(ctx context.Context, pod *corev1.Pod) error {
	labels, err := s.opts.Namespaces.Labels(ctx, pod.Namespace)
	if err != nil {
		return fmt.Errorf("%w: namespace %s: %v", grants.ErrUnavailable, pod.Namespace, err)
	}
	if labels[api.LabelInject] != api.LabelInjectEnabled {
		return fmt.Errorf("namespace %s is not opted in to Warden (label %s=%s)", pod.Namespace, api.LabelInject, api.LabelInjectEnabled)
	}
	if _, v := s.opts.Pods.Check(pod.Namespace, pod, true); v != nil {
		return v
	}
	return nil
}

func first(v authnv1.ExtraValue) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// readBody decodes one small JSON object strictly.
func readBody(w http.ResponseWriter, r *http.Request, v any) error {
	if err := httpjson.Decode(w, r, v, 64<<10); err != nil {
		return fmt.Errorf("%w: %v", errBadInput, err)
	}
	return nil
}

func validCaller(c grants.Caller, owner string) error {
	switch {
	case c.ServiceAccount != "" && (c.User != "" || len(c.Groups) > 0):
		return fmt.Errorf("%w: a caller is a user or the owner, not both", errBadInput)
	case c.ServiceAccount != "" && c.ServiceAccount != owner:
		// A pod may act for its own service account only.
		return fmt.Errorf("%w: caller service account %q is not this pod's owner", errForbidden, c.ServiceAccount)
	case c.ServiceAccount == "":
		if err := policy.ValidUser(c.User); err != nil {
			return fmt.Errorf("%w: %v", errBadInput, err)
		}
		for _, g := range c.Groups {
			if err := policy.ValidUser(g); err != nil {
				return fmt.Errorf("%w: group: %v", errBadInput, err)
			}
		}
	}
	return nil
}

// begin authenticates the request and reads its body; on failure it has answered already.
func (s *Server) begin(w http.ResponseWriter, r *http.Request, body any, caller *grants.Caller) (verified, bool) {
	id, err := s.authenticate(r.Context(), r)
	if err == nil {
		err = readBody(w, r, body)
	}
	if err == nil {
		err = validCaller(*caller, id.owner)
	}
	if err != nil {
		s.fail(w, r, err)
		return id, false
	}
	return id, true
}

func (s *Server) check(w http.ResponseWriter, r *http.Request) {
	var req grants.CheckRequest
	id, ok := s.begin(w, r, &req, &req.Caller)
	if !ok {
		return
	}
	d, err := s.opts.Grants.Check(r.Context(), id.owner, req.Caller, req.Dataset)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.opts.Log.Debug("grant", "pod", id.pod, "owner", id.owner, "caller", req.Caller.Name(), "dataset", req.Dataset, "allowed", d.Allowed(), "reason", d.Reason)
	writeJSON(w, http.StatusOK, d)
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	var req grants.ListRequest
	id, ok := s.begin(w, r, &req, &req.Caller)
	if !ok {
		return
	}
	l, err := s.opts.Grants.List(r.Context(), id.owner, req.Caller)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, grants.ListResponse{Datasets: l})
}

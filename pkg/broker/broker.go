// Package broker is the privileged half of Warden, served by cmd/webhook over TLS. Sidecars
// call it with their pod certificate (mutual TLS; issued by Warden's signer, requested by the
// kubelet only) or, where allowed, their pod's projected service-account token; the broker
// checks that the pod the credential names exists, runs as that service account and passes the
// pod invariant with its seal, and only then answers for the owner the credential proves.
package broker

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/kubernetes"

	"github.com/warden-dev/warden/internal/httpjson"
	"github.com/warden-dev/warden/pkg/brokerapi"
	"github.com/warden-dev/warden/pkg/cloudstorage"
	"github.com/warden-dev/warden/pkg/contract"
	"github.com/warden-dev/warden/pkg/grants"
	"github.com/warden-dev/warden/pkg/guard"
	"github.com/warden-dev/warden/pkg/identity"
	"github.com/warden-dev/warden/pkg/podcert"
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
	// TokenCacheTTL reuses a verified sidecar token for this long (default 10s; 0 keeps the default,
	// negative disables caching). A deleted pod's token stops working within this time.
	TokenCacheTTL time.Duration
	Log           *slog.Logger
	// Identity binds GKE workload identities (nil: the identity endpoints answer 501).
	Identity *identity.Binder
	// OrgAdmin and AdminGroup enable PUT /v1/admin/orgs/{org} for members of that group.
	OrgAdmin   *identity.OrgAdmin
	AdminGroup string
	// Pods is the pod invariant (the admission webhooks' own): the broker answers only pods that
	// pass it, seal included. Namespaces tells whether a pod's namespace is opted in.
	Pods       *guard.Rules
	Namespaces Namespaces
	// Storage hands out Cloud Storage credentials for the policy's spaces (nil: the storage
	// endpoints answer 501); Policy is the policy in force they decide with.
	Storage *cloudstorage.Service
	Policy  func() policy.View
	// Registerer receives the broker's metrics (nil: not registered).
	Registerer prometheus.Registerer
	// Certificates is the authority of sidecar certificates (pkg/podcert): a TLS client
	// certificate it issued identifies the pod (nil: certificates are not accepted).
	Certificates *podcert.Authority
	// Secrets opens an owner's secrets for people outside its pods (nil: those endpoints answer
	// 501); Policy tells which owners exist.
	Secrets OwnerSecrets
	// AcceptTokens also accepts projected service-account tokens (audience Audience), for
	// clusters without pod certificates. Weaker: a tenant with `create serviceaccounts/token`
	// can mint one for a running pod (docs/security.md).
	AcceptTokens bool
}

// Namespaces looks up a namespace's labels (the guard's trust in a live pod reads them).
type Namespaces = guard.Namespaces

// Server is the broker's HTTP handler.
type Server struct {
	opts    Options
	mux     *httpjson.Router
	metrics *metrics

	mu    sync.Mutex
	cache map[[32]byte]verified
}

// verified is an authenticated sidecar.
type verified struct {
	owner string
	pod   string
	at    time.Time
	// until is when its credential expires (zero for tokens, whose review already said).
	until time.Time
}

// New returns a ready broker.
func New(o Options) (*Server, error) {
	if o.Kube == nil || o.Grants == nil || o.Pods == nil || o.Namespaces == nil {
		return nil, errors.New("broker: Kubernetes client, grant source, pod rules and namespace lookup are required")
	}
	if o.Certificates == nil && !o.AcceptTokens {
		return nil, errors.New("broker: no way to authenticate sidecars: give the certificate authority, or accept tokens")
	}
	if (o.Storage != nil || o.Secrets != nil) && o.Policy == nil {
		return nil, errors.New("broker: storage credentials and owner secrets need the policy in force")
	}
	if o.Audience == "" {
		o.Audience = contract.TokenAudience
	}
	if o.TokenCacheTTL == 0 {
		o.TokenCacheTTL = 10 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	s := &Server{opts: o, mux: httpjson.NewRouter(nil), metrics: m, cache: map[[32]byte]verified{}}
	s.mux.Route(brokerapi.PathCheck, httpjson.Methods{http.MethodPost: s.check})
	s.mux.Route(brokerapi.PathList, httpjson.Methods{http.MethodPost: s.list})
	s.registerIdentity()
	s.registerStorage()
	s.registerSecrets()
	s.registerAccess()
	s.mux.Route("/healthz", httpjson.Methods{http.MethodGet: func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") }})
	return s, nil
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, code := statuses.Lookup(err)
	level := slog.LevelWarn
	if status >= 500 {
		level = slog.LevelError
	}
	s.opts.Log.Log(r.Context(), level, "broker request refused", "path", r.URL.Path, "status", status, "error", err, "remote", r.RemoteAddr)
	httpjson.WriteError(w, status, code, err.Error())
}

// readBody decodes one small JSON object strictly. A body over the limit stays a
// *http.MaxBytesError, which the mapping answers 413.
func readBody(w http.ResponseWriter, r *http.Request, v any) error {
	err := httpjson.Decode(w, r, v, 64<<10)
	if errors.Is(err, httpjson.ErrMalformed) {
		return fmt.Errorf("%w: %v", errBadInput, err)
	}
	return err
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

// beginIf is begin for the endpoints of a feature the broker may run without (on false): those
// refuse with off before any authentication work.
func (s *Server) beginIf(on bool, off error, w http.ResponseWriter, r *http.Request, body any, caller *grants.Caller) (verified, bool) {
	if !on {
		s.fail(w, r, off)
		return verified{}, false
	}
	return s.begin(w, r, body, caller)
}

func (s *Server) check(w http.ResponseWriter, r *http.Request) {
	var req brokerapi.CheckRequest
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
	httpjson.Write(w, http.StatusOK, d)
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	var req brokerapi.ListRequest
	id, ok := s.begin(w, r, &req, &req.Caller)
	if !ok {
		return
	}
	l, err := s.opts.Grants.List(r.Context(), id.owner, req.Caller)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, brokerapi.ListResponse{Datasets: l})
}

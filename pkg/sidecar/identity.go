package sidecar

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/warden-dev/warden/pkg/audit"
	"github.com/warden-dev/warden/pkg/grants"
)

// Broker is the sidecar's connection to the broker for calls it forwards as they are
// (*grants.Client in production).
type Broker interface {
	Call(ctx context.Context, method, path string, in, out any) error
}

const (
	actionIdentityOrgs  = "identity-orgs"
	actionIdentityBind  = "identity-bind"
	actionIdentityReset = "identity-reset"
)

var errNoBroker = errors.New("GCP identity needs the Warden broker: this sidecar runs in local mode (--policy); run it with --broker-url")

// forward answers with the broker's own status and message: they are meant for app code
// (403 not a member, 404 no default org, 503 IAM down, ...).
func (s *Server) forward(w http.ResponseWriter, q request, method, path string, in any, okStatus int) {
	if s.cfg.Broker == nil {
		s.fail(w, q, errNoBroker)
		return
	}
	var out map[string]any
	err := s.cfg.Broker.Call(q.ctx, method, path, in, &out)
	var se *grants.StatusError
	if errors.As(err, &se) {
		q.rec.Outcome, q.rec.Reason = audit.Denied, se.Message
		if se.Status >= 500 {
			q.rec.Outcome = audit.Failed
		}
		s.cfg.Audit.Log(q.rec)
		writeError(w, se.Status, se.Code, se.Message)
		return
	}
	if err != nil {
		s.fail(w, q, err)
		return
	}
	q.rec.Outcome = audit.Allowed
	if gsa, ok := out["gcp_service_account"].(string); ok {
		q.rec.Reason = fmt.Sprintf("org %v, %s, %v", out["org"], gsa, out["state"])
	}
	s.cfg.Audit.Log(q.rec)
	if okStatus == http.StatusNoContent {
		w.WriteHeader(okStatus)
		return
	}
	writeJSON(w, okStatus, out)
}

func (s *Server) identityOrgs(w http.ResponseWriter, r *http.Request) {
	q, _ := s.identityBegin(r, actionIdentityOrgs)
	s.forward(w, q, http.MethodGet, grants.PathIdentityOrgs, nil, http.StatusOK)
}

func (s *Server) identityBind(w http.ResponseWriter, r *http.Request) {
	q, _ := s.identityBegin(r, actionIdentityBind)
	var body grants.BindRequest
	if err := s.decodeBody(w, r, &body); err != nil {
		s.fail(w, q, err)
		return
	}
	q.rec.Dataset = body.Org
	s.forward(w, q, http.MethodPost, grants.PathIdentityGCP, body, http.StatusOK)
}

func (s *Server) identityReset(w http.ResponseWriter, r *http.Request) {
	q, _ := s.identityBegin(r, actionIdentityReset)
	s.forward(w, q, http.MethodDelete, grants.PathIdentityGCP, nil, http.StatusNoContent)
}

func (s *Server) identityBegin(r *http.Request, action string) (request, bool) {
	q := request{rec: audit.Record{Action: action, Owner: s.cfg.Owner}, ctx: r.Context()}
	if c, err := s.cfg.Callers.Caller(r); err == nil {
		q.rec.Caller = c.Name()
	}
	return q, true
}

package sidecar

import (
	"context"
	"fmt"
	"net/http"

	"github.com/warden-dev/warden/pkg/brokerapi"
	"github.com/warden-dev/warden/pkg/grants"
)

// Broker is the broker's GCP workload identity API (*brokerapi.Client in production).
type Broker interface {
	Orgs(ctx context.Context, caller grants.Caller) (brokerapi.OrgsResponse, error)
	Bind(ctx context.Context, req brokerapi.BindRequest) (brokerapi.Binding, error)
	Reset(ctx context.Context) error
	Access(ctx context.Context, req brokerapi.AccessRequest) (brokerapi.Access, error)
}

const (
	actionIdentityOrgs  = "identity-orgs"
	actionIdentityBind  = "identity-bind"
	actionIdentityReset = "identity-reset"
)

func (s *Server) identityOrgs(w http.ResponseWriter, r *http.Request) {
	q, ok := s.beginIdentity(w, r, actionIdentityOrgs, nil, nil)
	if !ok {
		return
	}
	o, err := s.cfg.Broker.Orgs(q.ctx, q.caller)
	s.answerForwarded(w, q, err, http.StatusOK, o)
}

func (s *Server) identityBind(w http.ResponseWriter, r *http.Request) {
	var body brokerapi.BindRequest
	q, ok := s.beginIdentity(w, r, actionIdentityBind, &body, &body.Caller)
	if !ok {
		return
	}
	q.rec.Dataset = body.Org
	b, err := s.cfg.Broker.Bind(q.ctx, body)
	if err == nil {
		q.rec.Reason = fmt.Sprintf("org %s, %s, %s", b.Org, b.GCPServiceAccount, b.State)
	}
	s.answerForwarded(w, q, err, http.StatusOK, b)
}

func (s *Server) identityReset(w http.ResponseWriter, r *http.Request) {
	q, ok := s.beginIdentity(w, r, actionIdentityReset, nil, nil)
	if !ok {
		return
	}
	s.answerForwarded(w, q, s.cfg.Broker.Reset(q.ctx), http.StatusNoContent, nil)
}

// beginIdentity is forward for the identity endpoints: a caller the sidecar cannot establish is
// refused, as for datasets, since the broker checks the caller's org membership too.
func (s *Server) beginIdentity(w http.ResponseWriter, r *http.Request, action string, body any, caller *grants.Caller) (request, bool) {
	var off error
	if s.cfg.Broker == nil {
		off = errNoBroker
	}
	return s.forward(w, r, action, body, caller, off)
}

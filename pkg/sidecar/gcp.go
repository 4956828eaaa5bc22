package sidecar

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/warden-dev/warden/internal/httpjson"
	"github.com/warden-dev/warden/pkg/audit"
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
	actionGCPOrgs  = "identity-orgs"
	actionGCPBind  = "identity-bind"
	actionGCPReset = "identity-reset"
	actionAccess   = "access"
)

func (s *Server) gcpOrgs(w http.ResponseWriter, r *http.Request) {
	q, ok := s.gcpBegin(w, r, actionGCPOrgs, nil, nil)
	if !ok {
		return
	}
	o, err := s.cfg.Broker.Orgs(q.ctx, q.caller)
	s.gcpDone(w, q, err, http.StatusOK, o)
}

func (s *Server) gcpBind(w http.ResponseWriter, r *http.Request) {
	var body brokerapi.BindRequest
	q, ok := s.gcpBegin(w, r, actionGCPBind, &body, &body.Caller)
	if !ok {
		return
	}
	q.rec.Dataset = body.Org
	b, err := s.cfg.Broker.Bind(q.ctx, body)
	if err == nil {
		q.rec.Reason = fmt.Sprintf("org %s, %s, %s", b.Org, b.GCPServiceAccount, b.State)
	}
	s.gcpDone(w, q, err, http.StatusOK, b)
}

func (s *Server) gcpReset(w http.ResponseWriter, r *http.Request) {
	q, ok := s.gcpBegin(w, r, actionGCPReset, nil, nil)
	if !ok {
		return
	}
	s.gcpDone(w, q, s.cfg.Broker.Reset(q.ctx), http.StatusNoContent, nil)
}

// whatMayIDo is GET /v1/access: what the owner and the caller may do together (datasets, orgs,
// spaces), decided by the broker; ?permission= filters.
func (s *Server) whatMayIDo(w http.ResponseWriter, r *http.Request) {
	q, ok := s.gcpBegin(w, r, actionAccess, nil, nil)
	if !ok {
		return
	}
	a, err := s.cfg.Broker.Access(q.ctx, brokerapi.AccessRequest{Caller: q.caller, Permission: r.URL.Query().Get("permission")})
	if err == nil {
		q.rec.Reason = fmt.Sprintf("%d datasets, %d orgs, %d spaces", len(a.Datasets), len(a.Orgs), len(a.Spaces))
	}
	s.gcpDone(w, q, err, http.StatusOK, a)
}

// gcpBegin is forward for the identity endpoints: a caller the sidecar cannot establish is
// refused, as for datasets, since the broker checks the caller's org membership too.
func (s *Server) gcpBegin(w http.ResponseWriter, r *http.Request, action string, body any, caller *grants.Caller) (request, bool) {
	var off error
	if s.cfg.Broker == nil {
		off = errNoBroker
	}
	return s.forward(w, r, action, body, caller, off)
}

// gcpDone answers with the broker's own status and message when it refused: they are meant for
// app code (403 not a member, 404 no default org, 503 IAM down, ...).
func (s *Server) gcpDone(w http.ResponseWriter, q request, err error, okStatus int, body any) {
	var se *brokerapi.StatusError
	switch {
	case errors.As(err, &se):
		q.rec.Outcome, q.rec.Reason = audit.Denied, se.Message
		if se.Status >= 500 {
			q.rec.Outcome = audit.Failed
		}
		s.cfg.Audit.Log(q.rec)
		httpjson.WriteError(w, se.Status, se.Code, se.Message)
	case err != nil:
		s.fail(w, q, err)
	default:
		q.rec.Outcome = audit.Allowed
		s.cfg.Audit.Log(q.rec)
		if okStatus == http.StatusNoContent {
			w.WriteHeader(okStatus)
			return
		}
		httpjson.Write(w, okStatus, body)
	}
}

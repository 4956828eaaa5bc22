package sidecar

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/warden-dev/warden/internal/httpjson"
	"github.com/warden-dev/warden/pkg/audit"
	"github.com/warden-dev/warden/pkg/brokerapi"
)

// Broker is the broker's GCP workload identity API (*brokerapi.Client in production).
type Broker interface {
	Orgs(ctx context.Context) (brokerapi.OrgsResponse, error)
	Bind(ctx context.Context, org string) (brokerapi.Binding, error)
	Reset(ctx context.Context) error
}

const (
	actionGCPOrgs  = "identity-orgs"
	actionGCPBind  = "identity-bind"
	actionGCPReset = "identity-reset"
)

func (s *Server) gcpOrgs(w http.ResponseWriter, r *http.Request) {
	q := s.gcpBegin(r, actionGCPOrgs)
	if s.cfg.Broker == nil {
		s.fail(w, q, errNoBroker)
		return
	}
	o, err := s.cfg.Broker.Orgs(q.ctx)
	s.gcpDone(w, q, err, http.StatusOK, o)
}

func (s *Server) gcpBind(w http.ResponseWriter, r *http.Request) {
	q := s.gcpBegin(r, actionGCPBind)
	var body brokerapi.BindRequest
	if err := s.decodeBody(w, r, &body); err != nil {
		s.fail(w, q, err)
		return
	}
	q.rec.Dataset = body.Org
	if s.cfg.Broker == nil {
		s.fail(w, q, errNoBroker)
		return
	}
	b, err := s.cfg.Broker.Bind(q.ctx, body.Org)
	if err == nil {
		q.rec.Reason = fmt.Sprintf("org %s, %s, %s", b.Org, b.GCPServiceAccount, b.State)
	}
	s.gcpDone(w, q, err, http.StatusOK, b)
}

func (s *Server) gcpReset(w http.ResponseWriter, r *http.Request) {
	q := s.gcpBegin(r, actionGCPReset)
	if s.cfg.Broker == nil {
		s.fail(w, q, errNoBroker)
		return
	}
	s.gcpDone(w, q, s.cfg.Broker.Reset(q.ctx), http.StatusNoContent, nil)
}

func (s *Server) gcpBegin(r *http.Request, action string) request {
	q := request{rec: audit.Record{Action: action, Owner: s.cfg.Owner}, ctx: r.Context()}
	if c, err := s.cfg.Callers.Caller(r); err == nil {
		q.rec.Caller = c.Name()
	}
	return q
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

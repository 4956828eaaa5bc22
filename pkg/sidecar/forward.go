package sidecar

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/warden-dev/warden/internal/httpjson"
	"github.com/warden-dev/warden/pkg/audit"
	"github.com/warden-dev/warden/pkg/brokerapi"
	"github.com/warden-dev/warden/pkg/grants"
)

// The identity, storage and access endpoints are the broker's decisions: the sidecar establishes
// the caller, forwards, audits and passes the broker's answer or refusal on.

// forward establishes the caller and reads the body (when there is one) of a request the
// broker decides, off the error to answer when that part of the broker is not configured. The
// caller never comes from the body: forward fills it in. On failure it has answered.
func (s *Server) forward(w http.ResponseWriter, r *http.Request, action string, body any, caller *grants.Caller, off error) (request, bool) {
	q, err := s.begin(r, action)
	q.ctx = r.Context()
	if err == nil && body != nil {
		err = s.decodeBody(w, r, body)
	}
	if err == nil && caller != nil && (caller.User != "" || caller.ServiceAccount != "" || len(caller.Groups) > 0) {
		err = fmt.Errorf("%w: the caller comes from %s or the bearer token, not from the body", errCaller, CallerHeader)
	}
	if err == nil {
		err = off
	}
	if err != nil {
		s.fail(w, q, err)
		return q, false
	}
	if caller != nil {
		*caller = q.caller
	}
	return q, true
}

// answerForwarded answers with the broker's own status and message when it refused: they are meant for
// app code (403 not a member, 404 no default org, 503 IAM down, ...).
func (s *Server) answerForwarded(w http.ResponseWriter, q request, err error, okStatus int, body any) {
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

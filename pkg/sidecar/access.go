package sidecar

import (
	"fmt"
	"net/http"

	"github.com/warden-dev/warden/pkg/brokerapi"
)

const actionAccess = "access"

// whatMayIDo is GET /v1/access: what the owner and the caller may do together (datasets, orgs,
// spaces), decided by the broker; ?permission= filters.
func (s *Server) whatMayIDo(w http.ResponseWriter, r *http.Request) {
	q, ok := s.beginIdentity(w, r, actionAccess, nil, nil)
	if !ok {
		return
	}
	a, err := s.cfg.Broker.Access(q.ctx, brokerapi.AccessRequest{Caller: q.caller, Permission: r.URL.Query().Get("permission")})
	if err == nil {
		q.rec.Reason = fmt.Sprintf("%d datasets, %d orgs, %d spaces", len(a.Datasets), len(a.Orgs), len(a.Spaces))
	}
	s.answerForwarded(w, q, err, http.StatusOK, a)
}

package broker

import (
	"context"
	"fmt"
	"net/http"
	"slices"

	"github.com/warden-dev/warden/internal/httpjson"
	"github.com/warden-dev/warden/pkg/brokerapi"
	"github.com/warden-dev/warden/pkg/grants"
)

// registerIdentity serves GKE workload identity: orgs, bind, reset, and the admins' org mapping.
func (s *Server) registerIdentity() {
	s.mux.Route(brokerapi.PathIdentityOrgs, httpjson.Methods{http.MethodPost: s.identityOrgs})
	s.mux.Route(brokerapi.PathIdentityGCP, httpjson.Methods{http.MethodPost: s.identityBind, http.MethodDelete: s.identityReset})
	s.mux.Route(brokerapi.PathAdminOrgs, httpjson.Methods{http.MethodPut: s.adminSetOrg})
}

func (s *Server) identityOwner(w http.ResponseWriter, r *http.Request) (string, bool) {
	if s.opts.Identity == nil {
		s.fail(w, r, errGCPOff)
		return "", false
	}
	id, err := s.authenticate(r.Context(), r)
	if err != nil {
		s.fail(w, r, err)
		return "", false
	}
	return id.owner, true
}

// beginIdentity is begin for the identity endpoints.
func (s *Server) beginIdentity(w http.ResponseWriter, r *http.Request, body any, caller *grants.Caller) (verified, bool) {
	return s.beginIf(s.opts.Identity != nil, errGCPOff, w, r, body, caller)
}

func (s *Server) identityOrgs(w http.ResponseWriter, r *http.Request) {
	var req brokerapi.OrgsRequest
	id, ok := s.beginIdentity(w, r, &req, &req.Caller)
	if !ok {
		return
	}
	orgs, err := s.opts.Identity.Orgs(id.owner, req.Caller.Principal())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := brokerapi.OrgsResponse{Orgs: make([]brokerapi.Org, len(orgs))}
	for i, o := range orgs {
		out.Orgs[i] = brokerapi.Org{Name: o.Name, GCPServiceAccount: o.GCPServiceAccount}
	}
	httpjson.Write(w, http.StatusOK, out)
}

func (s *Server) identityBind(w http.ResponseWriter, r *http.Request) {
	var req brokerapi.BindRequest
	id, ok := s.beginIdentity(w, r, &req, &req.Caller)
	if !ok {
		return
	}
	b, err := s.opts.Identity.Bind(r.Context(), id.owner, req.Caller.Principal(), req.Org)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, brokerapi.Binding{
		Org: b.Org, GCPServiceAccount: b.GCPServiceAccount, State: b.State, WrittenAt: b.WrittenAt, BoundAt: b.BoundAt,
	})
}

func (s *Server) identityReset(w http.ResponseWriter, r *http.Request) {
	owner, ok := s.identityOwner(w, r)
	if !ok {
		return
	}
	if err := s.opts.Identity.Reset(r.Context(), owner); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// adminSetOrg changes an org's GCP service account and answers with the account it replaced
// (the seed's "mapping updated from PREVIOUS to NEW"). The caller is any Kubernetes user
// (kubectl's token, an OIDC token) whose groups include the configured admin group.
func (s *Server) adminSetOrg(w http.ResponseWriter, r *http.Request) {
	if s.opts.OrgAdmin == nil || s.opts.AdminGroup == "" {
		s.fail(w, r, fmt.Errorf("%w: org administration is not enabled (--admin-group)", errForbidden))
		return
	}
	user, err := s.adminUser(r.Context(), r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var req brokerapi.OrgMappingRequest
	if err := readBody(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	org := r.PathValue("org")
	previous, err := s.opts.OrgAdmin.SetOrgAccount(r.Context(), org, req.GCPServiceAccount)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.opts.Log.Info("org mapping changed", "org", org, "previous_gsa", previous, "gsa", req.GCPServiceAccount, "by", user)
	httpjson.Write(w, http.StatusOK, brokerapi.OrgMapping{Org: org, Previous: previous, GCPServiceAccount: req.GCPServiceAccount})
}

// adminUser is the person behind the request, when they are in the admin group.
func (s *Server) adminUser(ctx context.Context, r *http.Request) (string, error) {
	user, err := s.person(ctx, r)
	if err != nil {
		return "", err
	}
	if !slices.Contains(user.Groups, s.opts.AdminGroup) {
		return "", fmt.Errorf("%w: %s is not in the admin group %q", errForbidden, user.Username, s.opts.AdminGroup)
	}
	return user.Username, nil
}

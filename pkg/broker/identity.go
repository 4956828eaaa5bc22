package broker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/warden-dev/warden/pkg/grants"
	"github.com/warden-dev/warden/pkg/identity"
)

// PathAdminOrgs changes an org's GCP service account (admins only).
const PathAdminOrgs = "/v1/admin/orgs/{org}"

// OrgMappingRequest is the body of PUT /v1/admin/orgs/{org}.
type OrgMappingRequest struct {
	GCPServiceAccount string `json:"gcpServiceAccount"`
}

var errIdentityOff = errors.New("GCP workload identity is not enabled on this broker (start the webhook with --gcp-identity)")

func (s *Server) registerIdentity() {
	s.mux.HandleFunc("GET "+grants.PathIdentityOrgs, s.identityOrgs)
	s.mux.HandleFunc("POST "+grants.PathIdentityGCP, s.identityBind)
	s.mux.HandleFunc("DELETE "+grants.PathIdentityGCP, s.identityReset)
	s.mux.HandleFunc("PUT "+PathAdminOrgs, s.adminSetOrg)
}

// identityStatus maps binder errors; ok is false for errors it does not know.
func identityStatus(err error) (int, string, bool) {
	switch {
	case errors.Is(err, errIdentityOff):
		return http.StatusNotImplemented, "not_implemented", true
	case errors.Is(err, identity.ErrNotMember):
		return http.StatusForbidden, "forbidden", true
	case errors.Is(err, identity.ErrUnknownOrg), errors.Is(err, identity.ErrNoDefaultOrg):
		return http.StatusNotFound, "not_found", true
	case errors.Is(err, identity.ErrIAMUnavailable), errors.Is(err, identity.ErrClusterUnavailable), errors.Is(err, identity.ErrNoPolicy):
		return http.StatusServiceUnavailable, "unavailable", true
	case errors.Is(err, identity.ErrIAMDenied):
		return http.StatusBadGateway, "iam_denied", true
	case errors.Is(err, identity.ErrNoProject), errors.Is(err, identity.ErrBadEdit):
		return http.StatusUnprocessableEntity, "invalid_policy", true
	}
	return 0, "", false
}

func (s *Server) identityOwner(w http.ResponseWriter, r *http.Request) (identityOwner string, ok bool) {
	if s.opts.Identity == nil {
		s.fail(w, r, errIdentityOff)
		return "", false
	}
	id, err := s.authenticate(r.Context(), r)
	if err != nil {
		s.fail(w, r, err)
		return "", false
	}
	return id.owner, true
}

func (s *Server) identityOrgs(w http.ResponseWriter, r *http.Request) {
	owner, ok := s.identityOwner(w, r)
	if !ok {
		return
	}
	orgs, err := s.opts.Identity.Orgs(owner)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"orgs": orgs})
}

func (s *Server) identityBind(w http.ResponseWriter, r *http.Request) {
	owner, ok := s.identityOwner(w, r)
	if !ok {
		return
	}
	var req grants.BindRequest
	if err := readBody(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	b, err := s.opts.Identity.Bind(r.Context(), owner, req.Org)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, b)
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

// adminSetOrg changes an org's GCP service account. The caller is any Kubernetes user (kubectl's
// token, an OIDC token) whose groups include the configured admin group.
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
	var req OrgMappingRequest
	if err := readBody(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	org := r.PathValue("org")
	if err := s.opts.OrgAdmin.SetOrgAccount(r.Context(), org, req.GCPServiceAccount); err != nil {
		s.fail(w, r, err)
		return
	}
	s.opts.Log.Info("org mapping changed", "org", org, "gsa", req.GCPServiceAccount, "by", user)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) adminUser(ctx context.Context, r *http.Request) (string, error) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		return "", fmt.Errorf("%w: send a Kubernetes bearer token", errAuth)
	}
	tr, err := s.opts.Kube.AuthenticationV1().TokenReviews().Create(ctx, &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: token}}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("%w: token review: %v", errUnavailable, err)
	}
	if !tr.Status.Authenticated {
		return "", fmt.Errorf("%w: token not accepted: %s", errAuth, tr.Status.Error)
	}
	if !slices.Contains(tr.Status.User.Groups, s.opts.AdminGroup) {
		return "", fmt.Errorf("%w: %s is not in the admin group %q", errForbidden, tr.Status.User.Username, s.opts.AdminGroup)
	}
	return tr.Status.User.Username, nil
}

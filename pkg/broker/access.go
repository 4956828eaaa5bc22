package broker

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	authnv1 "k8s.io/api/authentication/v1"

	"github.com/warden-dev/warden/internal/httpjson"
	"github.com/warden-dev/warden/pkg/brokerapi"
	"github.com/warden-dev/warden/pkg/grants"
	"github.com/warden-dev/warden/pkg/policy"
)

// "What may I do" (the Nebari seed's permission listing): the datasets, orgs and spaces a pod's
// owner and caller may use together, or one person; filtered by a permission. Every entry comes
// from the very rules the other endpoints decide with, so the listing cannot promise more.

func (s *Server) registerAccess() {
	s.mux.Route(brokerapi.PathAccess, httpjson.Methods{http.MethodPost: s.podAccess, http.MethodGet: s.personAccess})
}

// personReader lists what a caller may read without a pod (grants.Engine).
type personReader interface {
	ReadableBy(ctx context.Context, caller grants.Caller) ([]string, error)
}

func (s *Server) podAccess(w http.ResponseWriter, r *http.Request) {
	var req brokerapi.AccessRequest
	id, ok := s.begin(w, r, &req, &req.Caller)
	if !ok {
		return
	}
	if err := validPermission(req.Permission); err != nil {
		s.fail(w, r, err)
		return
	}
	ds, err := s.opts.Grants.List(r.Context(), id.owner, req.Caller)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ids := make([]string, len(ds))
	for i, d := range ds {
		ids[i] = d.ID
	}
	s.answerAccess(w, r, req.Permission, ids, policy.Subjects(id.owner, req.Caller.Principal()))
}

// personAccess answers for the token's own user, or with ?user=NAME for someone else, which
// takes `get` on accesses.warden.dev named NAME (warden-admin has it). A named user's groups
// are the policy's only: Warden cannot know what their identity provider would vouch for.
func (s *Server) personAccess(w http.ResponseWriter, r *http.Request) {
	user, err := s.person(r.Context(), r)
	if err == nil {
		err = validPermission(r.URL.Query().Get("permission"))
	}
	var caller grants.Caller
	if err == nil {
		caller, err = s.accessSubject(r, user)
	}
	pr, ok := s.opts.Grants.(personReader)
	if err == nil && !ok {
		err = fmt.Errorf("%w: this broker's grant source cannot list for a person", errBadInput)
	}
	var ids []string
	if err == nil {
		ids, err = pr.ReadableBy(r.Context(), caller)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.opts.Log.InfoContext(r.Context(), "access listing", "audit", true, "user", user.Username, "for", caller.Name())
	s.answerAccess(w, r, r.URL.Query().Get("permission"), ids, []policy.Principal{caller.Principal()})
}

// accessSubject is whom a person's listing is for: themselves (a service account's token
// stands for that service account, as policy members name it), or, for an admin, ?user=.
func (s *Server) accessSubject(r *http.Request, user authnv1.UserInfo) (grants.Caller, error) {
	if name := r.URL.Query().Get("user"); name != "" {
		if err := policy.ValidUser(name); err != nil {
			return grants.Caller{}, fmt.Errorf("%w: user: %v", errBadInput, err)
		}
		if err := s.permitNamed(r.Context(), user, "accesses", name); err != nil {
			return grants.Caller{}, err
		}
		return grants.Caller{User: name}, nil
	}
	if sa, ok := strings.CutPrefix(user.Username, "system:serviceaccount:"); ok {
		ns, name, _ := strings.Cut(sa, ":")
		return grants.Caller{ServiceAccount: ns + "/" + name}, nil
	}
	if err := policy.ValidUser(user.Username); err != nil {
		return grants.Caller{}, fmt.Errorf("%w: %s cannot be named in the policy: %v", errForbidden, user.Username, err)
	}
	var groups []string
	for _, g := range user.Groups {
		if policy.ValidUser(g) == nil { // system:authenticated and the like are not policy groups
			groups = append(groups, g)
		}
	}
	return grants.Caller{User: user.Username, Groups: groups}, nil
}

func validPermission(p string) error {
	if p != "" && !slices.Contains(brokerapi.Permissions, p) {
		return fmt.Errorf("%w: permission %q is not one of %s", errBadInput, p, strings.Join(brokerapi.Permissions, ", "))
	}
	return nil
}

func (s *Server) answerAccess(w http.ResponseWriter, r *http.Request, permission string, datasets []string, subjects []policy.Principal) {
	v := s.opts.Policy()
	if v == nil {
		s.fail(w, r, errNoPolicy)
		return
	}
	out := brokerapi.Access{Permission: permission, Datasets: []brokerapi.DatasetAccess{}, Orgs: []brokerapi.OrgAccess{}, Spaces: []brokerapi.SpaceAccess{}}
	for _, p := range subjects {
		out.Subjects = append(out.Subjects, p.String())
	}
	keep := func(perms ...string) bool { return permission == "" || slices.Contains(perms, permission) }
	if keep("read") {
		for _, id := range datasets {
			out.Datasets = append(out.Datasets, brokerapi.DatasetAccess{ID: id, Permissions: []string{"read"}})
		}
	}
	if keep("assume") {
		for _, o := range policy.OrgsFor(v, subjects...) {
			out.Orgs = append(out.Orgs, brokerapi.OrgAccess{Name: o.Name, GCPServiceAccount: o.GCPServiceAccount, Permissions: []string{"assume"}})
		}
	}
	for _, sp := range policy.SpacesFor(v, subjects...) {
		perms := make([]string, len(sp.Access))
		for i, a := range sp.Access {
			perms[i] = string(a)
		}
		if keep(perms...) {
			out.Spaces = append(out.Spaces, brokerapi.SpaceAccess{Org: sp.Org, Space: sp.Space, Role: sp.Role.String(), Permissions: perms})
		}
	}
	httpjson.Write(w, http.StatusOK, out)
}

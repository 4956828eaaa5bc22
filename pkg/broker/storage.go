package broker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/warden-dev/warden/internal/httpjson"
	"github.com/warden-dev/warden/pkg/brokerapi"
	"github.com/warden-dev/warden/pkg/cloudstorage"
	"github.com/warden-dev/warden/pkg/grants"
	"github.com/warden-dev/warden/pkg/policy"
)

// Storage credentials: a verified pod asks for one space and one access kind; the owner and the
// caller must both hold the role (policy.DecideStorageFor), then pkg/cloudstorage mints, signs or
// commits as the org's GCP service account. Every decision is logged as an audit line.

var (
	errStorageOff = errors.New("this broker hands out no Cloud Storage credentials (start the webhook with --storage)")
	errNoSpace    = errors.New("no such space")
	errNoPolicy   = fmt.Errorf("%w: no policy is loaded", grants.ErrUnavailable)
)

func (s *Server) registerStorage() {
	s.mux.Route(brokerapi.PathStorageCredentials, httpjson.Methods{http.MethodPost: s.storageCredentials})
	s.mux.Route(brokerapi.PathStorageSignedURL, httpjson.Methods{http.MethodPost: s.storageSignedURL})
	s.mux.Route(brokerapi.PathStorageCommit, httpjson.Methods{http.MethodPost: s.storageCommit})
}

// storageRequest is what every storage endpoint decides on.
type storageRequest struct {
	id     verified
	caller grants.Caller
	org    string
	space  string
	access policy.Access
	// method is a signed URL's: its access kind depends on the space (a PUT is an upload of
	// the kind the space takes), so decideStorage sets access from it.
	method string
	// commit marks a commit, which only the loading zone takes.
	commit bool
	// what names the operation in audit lines.
	what string
}

// authorize resolves the space and applies the rules to the owner and the caller; on success it
// returns the target to mint for. Every outcome is audited.
func (s *Server) authorize(ctx context.Context, q storageRequest) (cloudstorage.Target, error) {
	t, reason, err := s.decideStorage(q)
	outcome := "allowed"
	if err != nil {
		outcome, reason = "denied", err.Error()
	}
	s.opts.Log.InfoContext(ctx, "storage decision", "audit", true, "op", q.what, "pod", q.id.pod, "owner", q.id.owner,
		"caller", q.caller.Name(), "org", q.org, "space", q.space, "access", q.access, "outcome", outcome, "reason", reason)
	return t, err
}

// subjectRoles name policy.Subjects' entries in refusals and audit lines.
var subjectRoles = [...]string{"owner", "caller"}

func (s *Server) decideStorage(q storageRequest) (cloudstorage.Target, string, error) {
	if err := policy.ValidOrgName(q.org); err != nil {
		return cloudstorage.Target{}, "", fmt.Errorf("%w: org: %v", errBadInput, err)
	}
	if err := policy.ValidSpaceName(q.space); err != nil {
		return cloudstorage.Target{}, "", fmt.Errorf("%w: space: %v", errBadInput, err)
	}
	if q.method == "" && !q.access.Valid() {
		return cloudstorage.Target{}, "", fmt.Errorf("%w: access %q is not read, upload, upload/main or delete", errBadInput, q.access)
	}
	v := s.opts.Policy()
	if v == nil {
		return cloudstorage.Target{}, "", errNoPolicy
	}
	if _, ok := v.Owner(q.id.owner); !ok {
		return cloudstorage.Target{}, "", fmt.Errorf("%w: %s is not an owner in the policy", grants.ErrUnknownOwner, q.id.owner)
	}
	sp, ok := v.StorageSpace(q.org, q.space)
	if !ok {
		return cloudstorage.Target{}, "", fmt.Errorf("%w: org %q has no space %q", errNoSpace, q.org, q.space)
	}
	if q.commit && !sp.Space.LoadingZone {
		return cloudstorage.Target{}, "", fmt.Errorf("%w: commits announce uploads to the loading zone; %s/%s is a main space", errForbidden, q.org, q.space)
	}
	if q.method != "" {
		a, err := cloudstorage.AccessFor(q.method, sp.Space)
		if err != nil {
			return cloudstorage.Target{}, "", err
		}
		q.access = a
	}
	subjects := policy.Subjects(q.id.owner, q.caller.Principal())
	ds, refused := policy.DecideStorageFor(v, sp, subjects, q.access)
	if refused >= 0 {
		if d := ds[refused]; d.Misplaced {
			return cloudstorage.Target{}, "", fmt.Errorf("%w: %s", errForbidden, d.Missing)
		}
		return cloudstorage.Target{}, "", fmt.Errorf("%w: %s %s %s", errForbidden, subjectRoles[refused], subjects[refused], ds[refused].Missing)
	}
	var reasons []string
	for i, d := range ds {
		r := subjectRoles[i] + " " + d.Role.String()
		if d.Admin {
			r += " (admin)"
		}
		reasons = append(reasons, r)
	}
	reason := strings.Join(reasons, ", ")
	return cloudstorage.TargetOf(sp, v.Project(), q.access), reason, nil
}

// beginStorage authenticates, reads the body and checks the caller; on failure it has answered.
func (s *Server) beginStorage(w http.ResponseWriter, r *http.Request, body any, caller *grants.Caller) (verified, bool) {
	return s.beginIf(s.opts.Storage != nil, errStorageOff, w, r, body, caller)
}

func (s *Server) storageCredentials(w http.ResponseWriter, r *http.Request) {
	var req brokerapi.CredentialsRequest
	id, ok := s.beginStorage(w, r, &req, &req.Caller)
	if !ok {
		return
	}
	t, err := s.authorize(r.Context(), storageRequest{id: id, caller: req.Caller, org: req.Org, space: req.Space, access: policy.Access(req.Access), what: "credentials"})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	c, err := s.opts.Storage.Credential(r.Context(), t)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, c)
}

func (s *Server) storageSignedURL(w http.ResponseWriter, r *http.Request) {
	var req brokerapi.SignedURLRequest
	id, ok := s.beginStorage(w, r, &req, &req.Caller)
	if !ok {
		return
	}
	t, err := s.authorize(r.Context(), storageRequest{id: id, caller: req.Caller, org: req.Org, space: req.Space, method: req.Method, what: "signed-url " + req.Method})
	if err == nil {
		var u brokerapi.SignedURL
		if u, err = s.opts.Storage.SignedURL(r.Context(), t, req.Object, req.Method); err == nil {
			httpjson.Write(w, http.StatusOK, u)
			return
		}
	}
	s.fail(w, r, err)
}

func (s *Server) storageCommit(w http.ResponseWriter, r *http.Request) {
	var req brokerapi.CommitRequest
	id, ok := s.beginStorage(w, r, &req, &req.Caller)
	if !ok {
		return
	}
	// Committing is the end of an upload: it needs what uploading needs.
	t, err := s.authorize(r.Context(), storageRequest{id: id, caller: req.Caller, org: req.Org, space: req.Space, access: policy.AccessUpload, commit: true, what: "commit"})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	by := "serviceAccount:" + id.owner
	if req.Caller.ServiceAccount == "" {
		by += " for " + req.Caller.Name()
	}
	c, err := s.opts.Storage.Commit(r.Context(), t, req.RootDir, by)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, c)
}

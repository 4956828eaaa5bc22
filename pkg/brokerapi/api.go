// Package brokerapi is the broker's HTTP API as its clients see it: the paths, the request and
// answer types, and the client the sidecar uses. It imports nothing from Kubernetes, so the
// sidecar binary stays small; the broker (pkg/broker) serves these types.
package brokerapi

import (
	"net/url"
	"strings"
	"time"

	"github.com/warden-dev/warden/pkg/grants"
)

// Paths the broker serves (TLS, bearer token of the pod's projected service-account token;
// admins use their Kubernetes token on PathAdminOrgs).
const (
	PathCheck        = "/v1/grants/check"
	PathList         = "/v1/grants/list"
	PathIdentityOrgs = "/v1/identity/orgs"
	PathIdentityGCP  = "/v1/identity/gcp"
	PathAdminOrgs    = "/v1/admin/orgs/{org}"
	// PathOwnerSecrets and PathOwnerSecret are an owner's secrets for people outside its pods
	// (their Kubernetes bearer token; RBAC on owners/secrets in warden.dev): the sidecar's
	// /v1/secrets API, same bodies and ETags.
	PathOwnerSecrets = "/v1/owners/{namespace}/{name}/secrets"
	PathOwnerSecret  = "/v1/owners/{namespace}/{name}/secrets/{key}"
	// PathAccess answers "what may I do": POST from a sidecar (AccessRequest, for the pod's
	// owner and caller together), GET from a person with a Kubernetes token (?permission=,
	// ?user= for an admin asking about someone else).
	PathAccess = "/v1/access"
)

// Expand fills a path pattern's {placeholders}, in order, with values (path-escaped), so
// clients build the paths servers register and never spell them out: Expand(PathOwnerSecret,
// "apps", "etl", "db-password").
func Expand(pattern string, values ...string) string {
	var b strings.Builder
	for _, v := range values {
		before, rest, ok := strings.Cut(pattern, "{")
		if !ok {
			break
		}
		_, after, _ := strings.Cut(rest, "}")
		b.WriteString(before)
		b.WriteString(url.PathEscape(v))
		pattern = after
	}
	b.WriteString(pattern)
	return b.String()
}

// CheckRequest asks whether the pod's owner, for a caller, may read a dataset. The owner is not
// in it: the broker takes it from the verified token. The answer is a grants.Decision.
type CheckRequest struct {
	Dataset string        `json:"dataset"`
	Caller  grants.Caller `json:"caller"`
}

// ListRequest asks which datasets the owner and the caller may both read.
type ListRequest struct {
	Caller grants.Caller `json:"caller"`
}

// ListResponse answers ListRequest.
type ListResponse struct {
	Datasets []grants.Dataset `json:"datasets"`
}

// BindRequest is the body of POST /v1/identity/gcp (at the sidecar and at the broker): the org
// whose GCP service account the pod should act as; empty means the org used last. The sidecar
// fills in Caller (app code never does): the owner and the caller must both be org members.
type BindRequest struct {
	Org    string        `json:"org"`
	Caller grants.Caller `json:"caller"`
}

// OrgsRequest is the body of POST /v1/identity/orgs at the broker: the orgs the owner and the
// caller both belong to.
type OrgsRequest struct {
	Caller grants.Caller `json:"caller"`
}

// Binding answers a bind.
type Binding struct {
	Org               string `json:"org"`
	GCPServiceAccount string `json:"gcp_service_account"`
	// State is "pending" until IAM is expected to have propagated the change, then "bound".
	State     string    `json:"state"`
	WrittenAt time.Time `json:"written_at"`
	// BoundAt is when "pending" is expected to turn into "bound".
	BoundAt time.Time `json:"bound_at"`
}

// Org is one org the owner belongs to.
type Org struct {
	Name              string `json:"name"`
	GCPServiceAccount string `json:"gcp_service_account"`
}

// OrgsResponse answers GET /v1/identity/orgs.
type OrgsResponse struct {
	Orgs []Org `json:"orgs"`
}

// OrgMappingRequest is the body of PUT /v1/admin/orgs/{org}.
type OrgMappingRequest struct {
	GCPServiceAccount string `json:"gcp_service_account"`
}

// OrgMapping answers PUT /v1/admin/orgs/{org}: the org's GCP service account before and after.
// Previous is empty when it could not be told (the policy file did not parse before the edit).
type OrgMapping struct {
	Org               string `json:"org"`
	Previous          string `json:"previous_gcp_service_account"`
	GCPServiceAccount string `json:"gcp_service_account"`
}

// AccessRequest is the body of POST /v1/access: the caller (filled in by the sidecar) and an
// optional permission to filter by.
type AccessRequest struct {
	Caller     grants.Caller `json:"caller"`
	Permission string        `json:"permission,omitempty"`
}

// Permissions an access listing can be filtered by: read (datasets and spaces), the storage
// upload and delete kinds (spaces), assume (orgs: act as their GCP service account).
var Permissions = []string{"read", "upload", "upload/main", "delete", "assume"}

// Access answers "what may I do": what every subject (a pod's owner and its caller, or one
// person) may do, filtered by Permission when given.
type Access struct {
	Subjects   []string        `json:"subjects"`
	Permission string          `json:"permission,omitempty"`
	Datasets   []DatasetAccess `json:"datasets"`
	Orgs       []OrgAccess     `json:"orgs"`
	Spaces     []SpaceAccess   `json:"spaces"`
}

// DatasetAccess is one dataset the subjects may read.
type DatasetAccess struct {
	ID          string   `json:"id"`
	Permissions []string `json:"permissions"`
}

// OrgAccess is one org the subjects are all members of.
type OrgAccess struct {
	Name              string   `json:"name"`
	GCPServiceAccount string   `json:"gcp_service_account"`
	Permissions       []string `json:"permissions"`
}

// SpaceAccess is one storage space, the weakest role the subjects hold there and the access
// kinds they all pass.
type SpaceAccess struct {
	Org         string   `json:"org"`
	Space       string   `json:"space"`
	Role        string   `json:"role"`
	Permissions []string `json:"permissions"`
}

// Package sidecarapi is the sidecar's loopback HTTP API as its clients see it: the paths, the
// request and answer types, and a client (the `warden` CLI's, and Go app code's). The sidecar
// (pkg/sidecar) registers these paths and answers with these types; the endpoints it forwards to
// the broker (identity, storage, access) answer with the broker's types, so those are
// pkg/brokerapi's. Field names are snake_case, as on every Warden HTTP API.
package sidecarapi

import (
	"encoding/json"
	"time"

	"github.com/warden-dev/warden/pkg/brokerapi"
	"github.com/warden-dev/warden/pkg/grants"
)

// CallerHeader names the caller (the person the app acts for) when the app vouches for it;
// without it, and without a bearer token, the app acts for its owner.
const CallerHeader = "X-Warden-Caller"

// Paths the sidecar serves on 127.0.0.1:$WARDEN_PORT. Patterns hold {placeholders} in
// net/http's syntax; brokerapi.Expand fills them in.
const (
	PathHealthz = "/healthz"
	PathReadyz  = "/readyz"
	PathMetrics = "/metrics"

	PathDatasets      = "/v1/datasets"
	PathDatasetAccess = "/v1/datasets/{id}/access"
	PathDatasetFiles  = "/v1/datasets/{id}/files"
	PathDatasetStage  = "/v1/datasets/{id}/stage"
	PathStaged        = "/v1/staged/{name}"

	// PathSecrets is the owner's secrets: GET (?all=true for values), PUT (all of them, with
	// If-Match), DELETE (all of them). The broker serves the same API to people outside the
	// owner's pods at brokerapi.PathOwnerSecrets.
	PathSecrets = "/v1/secrets"
	PathSecret  = "/v1/secrets/{key}"

	// The forwarded endpoints are the broker's paths: the sidecar adds the pod's identity and
	// the caller and passes the broker's answer on.
	PathIdentityOrgs       = brokerapi.PathIdentityOrgs
	PathIdentityGCP        = brokerapi.PathIdentityGCP
	PathAccess             = brokerapi.PathAccess
	PathStorageCredentials = brokerapi.PathStorageCredentials
	PathStorageSignedURL   = brokerapi.PathStorageSignedURL
	PathStorageCommit      = brokerapi.PathStorageCommit
)

// Datasets answers GET PathDatasets: the datasets the owner and the caller may both read.
type Datasets struct {
	Datasets []grants.Dataset `json:"datasets"`
}

// Access answers GET PathDatasetAccess, 200 when both may read, else 403 with the same body.
type Access struct {
	DatasetID string        `json:"dataset_id"`
	Owner     grants.Access `json:"owner"`
	Caller    grants.Access `json:"caller"`
}

// Allowed is true when both may read.
func (a Access) Allowed() bool { return a.Owner.CanRead && a.Caller.CanRead }

// Entry is one entry of a folder listing.
type Entry struct {
	Name    string    `json:"name"`
	Size    int64     `json:"size"`
	Dir     bool      `json:"dir"`
	ModTime time.Time `json:"mod_time"`
}

// Files answers GET PathDatasetFiles (?path=, ?snapshot=). Truncated means the folder has more
// entries than a listing holds.
type Files struct {
	Entries   []Entry `json:"entries"`
	Truncated bool    `json:"truncated"`
}

// StageRequest is the body of POST PathDatasetStage.
type StageRequest struct {
	Path       string `json:"path"`
	TTLSeconds int64  `json:"ttl_seconds"`
	// Snapshot names one of the dataset's snapshots in the policy; empty means the head.
	Snapshot string `json:"snapshot,omitempty"`
}

// Staged answers a stage (201): where app code reads the copy, until when.
type Staged struct {
	Path      string    `json:"path"`
	Name      string    `json:"name"`
	ExpiresAt time.Time `json:"expires_at"`
	Size      int64     `json:"size"`
	SHA256    string    `json:"sha256"`
}

// SecretKeys answers GET PathSecrets: the names, never the values.
type SecretKeys struct {
	Keys []string `json:"keys"`
}

// Secret answers GET PathSecret. Values are any JSON value; text is a JSON string.
type Secret struct {
	Key   string          `json:"key"`
	Value json.RawMessage `json:"value"`
}

// BindRequest is the body of POST PathIdentityGCP: the org whose GCP service account the pod
// should act as ("" for the org used last). It has no caller: the sidecar sets it for the broker
// from the request's identity, and refuses one in the body.
type BindRequest struct {
	Org string `json:"org"`
}

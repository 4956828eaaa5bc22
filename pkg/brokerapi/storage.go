package brokerapi

import (
	"context"
	"net/http"
	"time"

	"github.com/warden-dev/warden/pkg/grants"
)

// Storage paths: the same at the sidecar (for app code) and at the broker.
const (
	PathStorageCredentials = "/v1/storage/credentials"
	PathStorageSignedURL   = "/v1/storage/signed-url"
	PathStorageCommit      = "/v1/storage/commit"
)

// CredentialsRequest asks for a short-lived token for one space and one access kind (read,
// upload or delete). At the sidecar, the caller comes from the request's identity; the sidecar
// fills Caller in for the broker.
type CredentialsRequest struct {
	Org    string        `json:"org"`
	Space  string        `json:"space"`
	Access string        `json:"access"`
	Caller grants.Caller `json:"caller,omitzero"`
}

// Credential is a downscoped OAuth access token: it reaches only the space's bucket and prefix,
// with only the permissions the access kind needs, until ExpiresAt.
type Credential struct {
	AccessToken string    `json:"access_token"`
	TokenType   string    `json:"token_type"`
	ExpiresAt   time.Time `json:"expires_at"`
	Org         string    `json:"org"`
	Space       string    `json:"space"`
	Access      string    `json:"access"`
	Bucket      string    `json:"bucket"`
	// Prefix is the space's object prefix: object names the token may reach start with it.
	Prefix string `json:"prefix"`
}

// SignedURLRequest asks for a V4 signed URL for one object of a space (its name relative to
// the space's prefix). Method GET needs read access, PUT upload, DELETE delete.
type SignedURLRequest struct {
	Org    string        `json:"org"`
	Space  string        `json:"space"`
	Object string        `json:"object"`
	Method string        `json:"method"`
	Caller grants.Caller `json:"caller,omitzero"`
}

// SignedURL answers SignedURLRequest.
type SignedURL struct {
	URL       string    `json:"url"`
	Method    string    `json:"method"`
	ExpiresAt time.Time `json:"expires_at"`
	Bucket    string    `json:"bucket"`
	// Object is the object's full name in the bucket (the space's prefix included).
	Object string `json:"object"`
}

// CommitRequest says that an upload under RootDir of the org's loading zone is complete.
type CommitRequest struct {
	Org     string        `json:"org"`
	Space   string        `json:"space"`
	RootDir string        `json:"root_dir"`
	Caller  grants.Caller `json:"caller,omitzero"`
}

// Object is one committed object.
type Object struct {
	// Name is the object's full name in the bucket.
	Name       string    `json:"name"`
	Size       int64     `json:"size"`
	MD5        string    `json:"md5,omitempty"`    // base64, as Cloud Storage reports it
	CRC32C     string    `json:"crc32c,omitempty"` // base64
	Generation int64     `json:"generation"`
	Updated    time.Time `json:"updated"`
}

// Commit answers CommitRequest: what was found under the root directory, and the Pub/Sub
// message that announced it to processing.
type Commit struct {
	Org     string   `json:"org"`
	Space   string   `json:"space"`
	Bucket  string   `json:"bucket"`
	RootDir string   `json:"root_dir"` // full prefix in the bucket, ending in '/'
	Objects []Object `json:"objects"`
	Topic   string   `json:"topic"` // projects/PROJECT/topics/TOPIC
	// MessageID is Pub/Sub's id of the notification.
	MessageID   string    `json:"message_id"`
	CommittedAt time.Time `json:"committed_at"`
	// CommittedBy names the owner and, when different, the caller.
	CommittedBy string `json:"committed_by"`
}

// StorageCredentials asks the broker for a space credential.
func (c *Client) StorageCredentials(ctx context.Context, req CredentialsRequest) (Credential, error) {
	var out Credential
	err := c.Call(ctx, http.MethodPost, PathStorageCredentials, req, &out)
	return out, err
}

// StorageSignedURL asks the broker for a signed URL.
func (c *Client) StorageSignedURL(ctx context.Context, req SignedURLRequest) (SignedURL, error) {
	var out SignedURL
	err := c.Call(ctx, http.MethodPost, PathStorageSignedURL, req, &out)
	return out, err
}

// StorageCommit asks the broker to commit an upload.
func (c *Client) StorageCommit(ctx context.Context, req CommitRequest) (Commit, error) {
	var out Commit
	err := c.Call(ctx, http.MethodPost, PathStorageCommit, req, &out)
	return out, err
}

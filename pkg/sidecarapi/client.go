package sidecarapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/warden-dev/warden/internal/httpjson"
	"github.com/warden-dev/warden/pkg/brokerapi"
	"github.com/warden-dev/warden/pkg/contract"
	"github.com/warden-dev/warden/pkg/grants"
)

// Client calls a sidecar. Caller, when set, is sent as CallerHeader on every call: the app
// vouches for the person it acts for (a sidecar with JWT callers refuses it; send the person's
// token through HTTP's transport instead).
type Client struct {
	// BaseURL is scheme://host:port, e.g. http://127.0.0.1:8500 (FromEnv reads $WARDEN_PORT).
	BaseURL string
	HTTP    *http.Client
	Caller  string
}

// ErrNoPort is FromEnv outside a Warden pod.
var ErrNoPort = errors.New("WARDEN_PORT is not set: this is not a Warden pod")

// ErrUnreachable wraps failures to get any answer (connection refused, a timeout, a broken
// answer), so callers can tell them from the server's refusals (*Error).
var ErrUnreachable = errors.New("sidecar unreachable")

// FromEnv is the client of the pod's own sidecar, at 127.0.0.1:$WARDEN_PORT.
func FromEnv() (*Client, error) {
	port := os.Getenv(contract.EnvPort)
	if port == "" {
		return nil, ErrNoPort
	}
	return &Client{BaseURL: "http://127.0.0.1:" + port, HTTP: http.DefaultClient}, nil
}

// Error is an answer other than 2xx: its status, its stable code and its message.
type Error struct {
	Status  int
	Code    httpjson.Code
	Message string
	// Body is the answer as sent: a dataset access refusal (403) is an Access.
	Body []byte
}

func (e *Error) Error() string { return fmt.Sprintf("%s (%d)", e.Message, e.Status) }

// Call is one request: path (with its query) on BaseURL, body as JSON (nil: none), ifMatch as
// If-Match ("" none). A JSON answer is decoded into out (nil: ignored). It returns the answer's
// ETag, which the secrets endpoints set.
func (c *Client) Call(ctx context.Context, method, path string, body any, ifMatch string, out any) (string, error) {
	ans, err := httpjson.RoundTrip(ctx, c.HTTP, method, strings.TrimSuffix(c.BaseURL, "/")+path, body, func(h http.Header) {
		if ifMatch != "" {
			h.Set("If-Match", ifMatch)
		}
		if c.Caller != "" {
			h.Set(CallerHeader, c.Caller)
		}
	})
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	if !ans.OK() {
		e := ans.Failure(fmt.Sprintf("%s %s: %d %s", method, path, ans.Status, http.StatusText(ans.Status)))
		return "", &Error{Status: ans.Status, Code: e.Code, Message: e.Error, Body: ans.Body}
	}
	if err := ans.Decode(out); err != nil {
		return "", fmt.Errorf("%w: an unreadable answer to %s %s: %v", ErrUnreachable, method, path, err)
	}
	return ans.Header.Get("ETag"), nil
}

func (c *Client) get(ctx context.Context, path string, out any) error {
	_, err := c.Call(ctx, http.MethodGet, path, nil, "", out)
	return err
}

func (c *Client) post(ctx context.Context, path string, in, out any) error {
	_, err := c.Call(ctx, http.MethodPost, path, in, "", out)
	return err
}

// withQuery appends the non-empty values of kv (name, value, ...) as a query.
func withQuery(path string, kv ...string) string {
	q := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			q.Set(kv[i], kv[i+1])
		}
	}
	if len(q) == 0 {
		return path
	}
	return path + "?" + q.Encode()
}

// Datasets lists the datasets the owner and the caller may both read.
func (c *Client) Datasets(ctx context.Context) ([]grants.Dataset, error) {
	var d Datasets
	err := c.get(ctx, PathDatasets, &d)
	return d.Datasets, err
}

// Access decides one dataset. A refusal is an answer, not an error: Allowed says which.
func (c *Client) Access(ctx context.Context, dataset string) (Access, error) {
	var a Access
	err := c.get(ctx, brokerapi.Expand(PathDatasetAccess, dataset), &a)
	var e *Error
	if errors.As(err, &e) && e.Status == http.StatusForbidden && json.Unmarshal(e.Body, &a) == nil && a.DatasetID != "" {
		return a, nil
	}
	return a, err
}

// Files lists a folder of a dataset's snapshot ("" for the head).
func (c *Client) Files(ctx context.Context, dataset, path, snapshot string) (Files, error) {
	var f Files
	err := c.get(ctx, withQuery(brokerapi.Expand(PathDatasetFiles, dataset), "path", path, "snapshot", snapshot), &f)
	return f, err
}

// Stage copies a dataset's file into the pod's read-only data directory.
func (c *Client) Stage(ctx context.Context, dataset string, req StageRequest) (Staged, error) {
	var s Staged
	err := c.post(ctx, brokerapi.Expand(PathDatasetStage, dataset), req, &s)
	return s, err
}

// DeleteStaged removes a staged copy (Staged.Name) before its expiry.
func (c *Client) DeleteStaged(ctx context.Context, name string) error {
	_, err := c.Call(ctx, http.MethodDelete, brokerapi.Expand(PathStaged, name), nil, "", nil)
	return err
}

// Orgs lists the orgs the owner and the caller both belong to.
func (c *Client) Orgs(ctx context.Context) (brokerapi.OrgsResponse, error) {
	var o brokerapi.OrgsResponse
	err := c.get(ctx, PathIdentityOrgs, &o)
	return o, err
}

// Bind makes the pod act as an org's GCP service account.
func (c *Client) Bind(ctx context.Context, req BindRequest) (brokerapi.Binding, error) {
	var b brokerapi.Binding
	err := c.post(ctx, PathIdentityGCP, req, &b)
	return b, err
}

// ResetIdentity removes the owner's binding.
func (c *Client) ResetIdentity(ctx context.Context) error {
	_, err := c.Call(ctx, http.MethodDelete, PathIdentityGCP, nil, "", nil)
	return err
}

// WhatMayIDo lists what the owner and the caller may do together ("" permission: everything).
func (c *Client) WhatMayIDo(ctx context.Context, permission string) (brokerapi.Access, error) {
	var a brokerapi.Access
	err := c.get(ctx, withQuery(PathAccess, "permission", permission), &a)
	return a, err
}

// StorageCredentials asks for a space credential; req.Caller stays empty (the sidecar sets it).
func (c *Client) StorageCredentials(ctx context.Context, req brokerapi.CredentialsRequest) (brokerapi.Credential, error) {
	var out brokerapi.Credential
	err := c.post(ctx, PathStorageCredentials, req, &out)
	return out, err
}

// StorageSignedURL asks for a signed URL for one object of a space.
func (c *Client) StorageSignedURL(ctx context.Context, req brokerapi.SignedURLRequest) (brokerapi.SignedURL, error) {
	var out brokerapi.SignedURL
	err := c.post(ctx, PathStorageSignedURL, req, &out)
	return out, err
}

// StorageCommit announces a complete upload to the loading zone.
func (c *Client) StorageCommit(ctx context.Context, req brokerapi.CommitRequest) (brokerapi.Commit, error) {
	var out brokerapi.Commit
	err := c.post(ctx, PathStorageCommit, req, &out)
	return out, err
}

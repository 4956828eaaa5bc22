package brokerapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/warden-dev/warden/internal/httpjson"
	"github.com/warden-dev/warden/pkg/grants"
)

// Client asks the broker over HTTPS. It authenticates with the pod certificate its HTTP
// client's TLS configuration presents (ClientCertificate), or, with TokenFile, with the pod's
// projected service-account token (re-read as the kubelet rotates it).
type Client struct {
	BaseURL string
	HTTP    *http.Client
	// TokenFile is the projected token to send ("" sends none: the certificate identifies the
	// pod).
	TokenFile string
	// Timeout bounds one call (default DefaultTimeout); commits take CommitTimeout.
	Timeout time.Duration

	mu        sync.Mutex
	token     string
	tokenRead time.Time
}

// Call timeouts: the broker answers within them (its Google API calls have shorter ones).
const (
	DefaultTimeout = 5 * time.Second
	// CommitTimeout allows a commit's listing of up to ten thousand objects and its publish.
	CommitTimeout = 30 * time.Second
)

// tokenRefresh is how often the token file is re-read; the kubelet rotates projected tokens at
// 80% of their lifetime, so minutes are plenty.
const tokenRefresh = 30 * time.Second

func (c *Client) bearer() (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" && time.Since(c.tokenRead) < tokenRefresh {
		return c.token, nil
	}
	b, err := os.ReadFile(c.TokenFile)
	if err != nil {
		return "", fmt.Errorf("%w: reading service-account token: %v", grants.ErrUnavailable, err)
	}
	c.token, c.tokenRead = strings.TrimSpace(string(b)), time.Now()
	return c.token, nil
}

// StatusError is a broker answer other than success: its status, code and message, which the
// sidecar passes on to app code where they mean something to it.
type StatusError struct {
	Status  int
	Code    httpjson.Code
	Message string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("broker answered %d: %s", e.Status, e.Message)
}

// Call sends one request to the broker with the pod's token. Transport failures wrap
// grants.ErrUnavailable; answers other than 2xx are *StatusError.
func (c *Client) Call(ctx context.Context, method, path string, in, out any) error {
	timeout := c.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	if path == PathStorageCommit {
		timeout = CommitTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var token string
	if c.TokenFile != "" {
		var err error
		if token, err = c.bearer(); err != nil {
			return err
		}
	}
	ans, err := httpjson.RoundTrip(ctx, c.HTTP, method, strings.TrimSuffix(c.BaseURL, "/")+path, in, func(h http.Header) {
		if token != "" {
			h.Set("Authorization", "Bearer "+token)
		}
	})
	if err != nil {
		return fmt.Errorf("%w: broker: %v", grants.ErrUnavailable, err)
	}
	if !ans.OK() {
		e := ans.Failure(fmt.Sprintf("%d %s", ans.Status, http.StatusText(ans.Status)))
		return &StatusError{Status: ans.Status, Code: e.Code, Message: e.Error}
	}
	if err := ans.Decode(out); err != nil {
		return fmt.Errorf("%w: broker sent an unreadable answer: %v", grants.ErrUnavailable, err)
	}
	return nil
}

// post is Call for the grant endpoints, whose refusals map onto the Source errors.
func (c *Client) post(ctx context.Context, path string, in, out any) error {
	err := c.Call(ctx, http.MethodPost, path, in, out)
	var se *StatusError
	if errors.As(err, &se) {
		if se.Status == http.StatusForbidden {
			return fmt.Errorf("%w: broker: %s", grants.ErrUnknownOwner, se.Message)
		}
		// 401 means this pod's token was not accepted: a configuration problem the app
		// cannot fix, so it is reported as unavailable rather than as a refusal.
		return fmt.Errorf("%w: %v", grants.ErrUnavailable, se)
	}
	return err
}

// Check implements grants.Source. The owner argument is informational: the broker decides for the
// owner its token proves.
func (c *Client) Check(ctx context.Context, owner string, caller grants.Caller, dataset string) (grants.Decision, error) {
	var d grants.Decision
	err := c.post(ctx, PathCheck, CheckRequest{Dataset: dataset, Caller: caller}, &d)
	if err == nil && d.Owner.Name != owner {
		return d, fmt.Errorf("%w: broker answered for owner %q, this sidecar serves %q", grants.ErrUnavailable, d.Owner.Name, owner)
	}
	return d, err
}

// List implements grants.Source.
func (c *Client) List(ctx context.Context, _ string, caller grants.Caller) ([]grants.Dataset, error) {
	var l ListResponse
	if err := c.post(ctx, PathList, ListRequest{Caller: caller}, &l); err != nil {
		return nil, err
	}
	if l.Datasets == nil {
		return nil, errors.New("broker answer has no datasets")
	}
	return l.Datasets, nil
}

// Orgs lists the orgs the pod's owner belongs to.
func (c *Client) Orgs(ctx context.Context, caller grants.Caller) (OrgsResponse, error) {
	var o OrgsResponse
	err := c.Call(ctx, http.MethodPost, PathIdentityOrgs, OrgsRequest{Caller: caller}, &o)
	return o, err
}

// Bind binds the pod's owner to an org's GCP service account (req.Org "" for the org used last).
func (c *Client) Bind(ctx context.Context, req BindRequest) (Binding, error) {
	var b Binding
	err := c.Call(ctx, http.MethodPost, PathIdentityGCP, req, &b)
	return b, err
}

// Access lists what the pod's owner and the caller may do together (req.Permission filters).
func (c *Client) Access(ctx context.Context, req AccessRequest) (Access, error) {
	var a Access
	err := c.Call(ctx, http.MethodPost, PathAccess, req, &a)
	return a, err
}

// Reset removes the owner's binding.
func (c *Client) Reset(ctx context.Context) error {
	return c.Call(ctx, http.MethodDelete, PathIdentityGCP, nil, nil)
}

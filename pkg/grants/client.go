package grants

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// Broker API paths, served by the broker in cmd/webhook.
const (
	PathCheck = "/v1/grants/check"
	PathList  = "/v1/grants/list"
)

// CheckRequest and ListRequest are the broker's request bodies. The owner is not in them: the
// broker takes it from the caller's verified service-account token.
type CheckRequest struct {
	Dataset string `json:"dataset"`
	Caller  Caller `json:"caller"`
}

type ListRequest struct {
	Caller Caller `json:"caller"`
}

type ListResponse struct {
	Datasets []Dataset `json:"datasets"`
}

// Client asks the broker over HTTPS, authenticating with the pod's projected service-account
// token (re-read as the kubelet rotates it).
type Client struct {
	BaseURL   string
	HTTP      *http.Client
	TokenFile string

	mu        sync.Mutex
	token     string
	tokenRead time.Time
}

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
		return "", fmt.Errorf("%w: reading service-account token: %v", ErrUnavailable, err)
	}
	c.token, c.tokenRead = strings.TrimSpace(string(b)), time.Now()
	return c.token, nil
}

func (c *Client) post(ctx context.Context, path string, in, out any) error {
	token, err := c.bearer()
	if err != nil {
		return err
	}
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(c.BaseURL, "/")+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("%w: broker: %v", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("%w: broker: %v", ErrUnavailable, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(data, &e)
		if e.Error == "" {
			e.Error = resp.Status
		}
		switch resp.StatusCode {
		case http.StatusForbidden:
			return fmt.Errorf("%w: broker: %s", ErrUnknownOwner, e.Error)
		default:
			// 401 means this pod's token was not accepted: a configuration problem the app
			// cannot fix, so it is reported as unavailable rather than as a refusal.
			return fmt.Errorf("%w: broker answered %d: %s", ErrUnavailable, resp.StatusCode, e.Error)
		}
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%w: broker sent an unreadable answer: %v", ErrUnavailable, err)
	}
	return nil
}

// Check implements Source. The owner argument is informational: the broker decides for the
// owner its token proves.
func (c *Client) Check(ctx context.Context, owner string, caller Caller, dataset string) (Decision, error) {
	var d Decision
	err := c.post(ctx, PathCheck, CheckRequest{Dataset: dataset, Caller: caller}, &d)
	if err == nil && d.Owner.Name != owner {
		return d, fmt.Errorf("%w: broker answered for owner %q, this sidecar serves %q", ErrUnavailable, d.Owner.Name, owner)
	}
	return d, err
}

// List implements Source.
func (c *Client) List(ctx context.Context, _ string, caller Caller) ([]Dataset, error) {
	var l ListResponse
	if err := c.post(ctx, PathList, ListRequest{Caller: caller}, &l); err != nil {
		return nil, err
	}
	if l.Datasets == nil {
		return nil, errors.New("broker answer has no datasets")
	}
	return l.Datasets, nil
}

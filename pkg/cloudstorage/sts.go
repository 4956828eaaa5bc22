package cloudstorage

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google/downscope"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Downscoper exchanges a token for one narrowed by an access boundary.
type Downscoper interface {
	Downscope(ctx context.Context, root *oauth2.Token, rules []downscope.AccessBoundaryRule) (*oauth2.Token, error)
}

// googleSTS is where golang.org/x/oauth2/google/downscope sends its exchange.
const googleSTS = "https://sts.googleapis.com/v1/token"

// STS downscopes with golang.org/x/oauth2/google/downscope, Google's own client of the token
// exchange. Endpoint, when set, receives the requests the library addresses to Google's STS (a
// private endpoint, or the in-process fake in tests); HTTP is the client to use (default
// http.DefaultClient).
type STS struct {
	Endpoint string
	HTTP     *http.Client
}

// Downscope implements Downscoper. The library reports failures as text; a RoundTripper in
// between remembers the status STS answered, so an outage (5xx, no answer) and a refusal (4xx)
// are told apart.
func (s STS) Downscope(ctx context.Context, root *oauth2.Token, rules []downscope.AccessBoundaryRule) (*oauth2.Token, error) {
	base := s.HTTP
	if base == nil {
		base = http.DefaultClient
	}
	rt := &recorder{next: base.Transport, endpoint: s.Endpoint}
	if rt.next == nil {
		rt.next = http.DefaultTransport
	}
	client := &http.Client{Transport: rt, Timeout: callTimeout}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, client)
	ts, err := downscope.NewTokenSource(ctx, downscope.DownscopingConfig{RootSource: oauth2.StaticTokenSource(root), Rules: rules})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadInput, err)
	}
	tok, err := ts.Token()
	if err != nil {
		code, sent := rt.result()
		switch {
		case !sent || code >= 500 || code == http.StatusTooManyRequests:
			return nil, fmt.Errorf("%w: STS: %v", ErrUnavailable, err)
		default:
			return nil, fmt.Errorf("%w: STS: %v", ErrDenied, err)
		}
	}
	return tok, nil
}

type recorder struct {
	next     http.RoundTripper
	endpoint string

	mu     sync.Mutex
	status int
	sent   bool
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if r.endpoint != "" && req.URL.String() == googleSTS {
		u, err := url.Parse(r.endpoint)
		if err != nil {
			return nil, err
		}
		req = req.Clone(req.Context())
		req.URL = u
		req.Host = u.Host
	}
	resp, err := r.next.RoundTrip(req)
	if err == nil {
		r.mu.Lock()
		r.status, r.sent = resp.StatusCode, true
		r.mu.Unlock()
	}
	return resp, err
}

func (r *recorder) result() (int, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status, r.sent
}

// classify turns a Google API error into ErrUnavailable (try again later) or ErrDenied (a
// configuration problem).
func classify(what string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return fmt.Errorf("%w: %s: %v", ErrUnavailable, what, err)
	}
	if st, ok := status.FromError(err); ok {
		switch st.Code() {
		case codes.PermissionDenied, codes.NotFound, codes.Unauthenticated, codes.InvalidArgument, codes.FailedPrecondition, codes.OutOfRange:
			return fmt.Errorf("%w: %s: %s", ErrDenied, what, st.Message())
		}
	}
	return fmt.Errorf("%w: %s: %v", ErrUnavailable, what, err)
}

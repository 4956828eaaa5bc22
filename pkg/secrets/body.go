package secrets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/warden-dev/warden/internal/httpjson"
)

// DecodeValues reads a request body of secrets, the proposal's DataJobSecrets: a JSON object
// whose values are any JSON, within limit bytes of secrets (the body may carry a little JSON
// around them). The sidecar's and the broker's secrets APIs read their bodies with it.
func DecodeValues(w http.ResponseWriter, r *http.Request, limit int) (Values, error) {
	var data Values
	if err := httpjson.Decode(w, r, &data, int64(limit)+4096); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, fmt.Errorf("%w: the request body is over the %d-byte limit", ErrTooLarge, limit)
		}
		return nil, fmt.Errorf("%w: want a JSON object of secrets: %v", ErrBadValue, err)
	}
	if data == nil {
		return nil, fmt.Errorf("%w: want a JSON object, got null", ErrBadValue)
	}
	return data, nil
}

// KV is one owner's secrets as the HTTP APIs serve them (*Store implements it).
type KV interface {
	Keys(ctx context.Context) ([]string, int, error)
	All(ctx context.Context) (Values, int, error)
	Get(ctx context.Context, key string) (json.RawMessage, int, error)
	SetAll(ctx context.Context, data Values, ifVersion *int) (int, error)
	Delete(ctx context.Context, key string, ifVersion *int) (int, error)
	DeleteAll(ctx context.Context, ifVersion *int) (int, error)
}

var _ KV = (*Store)(nil)

// ETag renders a KV version as the APIs' ETag; If-Match takes the same form (or the bare number).
func ETag(v int) string { return `"v` + strconv.Itoa(v) + `"` }

// IfMatch reads a request's If-Match: nil when absent, else the version it names.
func IfMatch(r *http.Request) (*int, error) {
	h := strings.TrimSpace(r.Header.Get("If-Match"))
	if h == "" {
		return nil, nil
	}
	n, err := strconv.Atoi(strings.TrimPrefix(strings.Trim(h, `"`), "v"))
	if err != nil || n < 0 {
		return nil, fmt.Errorf("%w: If-Match %q is not a version such as \"v3\"", ErrBadValue, h)
	}
	return &n, nil
}

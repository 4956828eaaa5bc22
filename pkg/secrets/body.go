package secrets

import (
	"errors"
	"fmt"
	"net/http"

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

// Package httpjson reads request bodies the way every Warden endpoint wants them: one JSON value,
// bounded in size, unknown fields refused, nothing after it.
package httpjson

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// ErrMalformed wraps every decoding error except a body over the limit, which comes back as the
// *http.MaxBytesError net/http produces (errors.As finds it), so callers can answer 413.
var ErrMalformed = errors.New("malformed JSON body")

// Decode reads r's body into v.
func Decode(w http.ResponseWriter, r *http.Request, v any, limit int64) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return err
		}
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return err
		}
		return fmt.Errorf("%w: unexpected data after the JSON value", ErrMalformed)
	}
	return nil
}

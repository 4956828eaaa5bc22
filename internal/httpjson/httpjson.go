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

// Code is the stable "code" of an error answer, for programs; the message is for people.
type Code string

// The codes Warden's APIs answer with.
const (
	CodeBadRequest          Code = "bad_request"
	CodeUnauthorized        Code = "unauthorized"
	CodeForbidden           Code = "forbidden"
	CodeNotFound            Code = "not_found"
	CodeMethodNotAllowed    Code = "method_not_allowed"
	CodeConflict            Code = "conflict"
	CodePayloadTooLarge     Code = "payload_too_large"
	CodeInvalidPolicy       Code = "invalid_policy"
	CodeInsufficientStorage Code = "insufficient_storage"
	CodeInternal            Code = "internal"
	CodeNotImplemented      Code = "not_implemented"
	CodeIAMDenied           Code = "iam_denied"
	// CodeGCPDenied: a Google API refused Warden's own call (a role or resource is missing).
	CodeGCPDenied Code = "gcp_denied"
	// CodeVaultDenied is Vault refusing the broker's own login or policy (a setup mistake).
	CodeVaultDenied Code = "vault_denied"
	CodeUnavailable Code = "unavailable"
	CodeTimeout     Code = "timeout"
)

// ErrorBody is every error answer: {"error": "...", "code": "..."}.
type ErrorBody struct {
	Error string `json:"error"`
	Code  Code   `json:"code"`
}

// Write answers v as JSON with status. Answers may carry secrets or grants: never cached.
func Write(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteError answers an error.
func WriteError(w http.ResponseWriter, status int, code Code, msg string) {
	Write(w, status, ErrorBody{Error: msg, Code: code})
}

// Rule maps errors that match Err (errors.Is) to an answer.
type Rule struct {
	Err    error
	Status int
	Code   Code
}

// Mapping is one API's table from errors to answers, the one place where an error's status is
// decided. The first matching rule wins; a body over its limit is 413; anything else is 500.
type Mapping []Rule

// Lookup returns the status and code for err.
func (m Mapping) Lookup(err error) (int, Code) {
	for _, r := range m {
		if errors.Is(err, r.Err) {
			return r.Status, r.Code
		}
	}
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return http.StatusRequestEntityTooLarge, CodePayloadTooLarge
	}
	return http.StatusInternalServerError, CodeInternal
}

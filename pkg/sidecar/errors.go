package sidecar

import (
	"context"
	"errors"
	"net/http"

	"github.com/warden-dev/warden/internal/httpjson"
	"github.com/warden-dev/warden/pkg/grants"
	"github.com/warden-dev/warden/pkg/secrets"
	"github.com/warden-dev/warden/pkg/stage"
)

var (
	errBody   = errors.New("bad request body")
	errDenied = errors.New("access denied")
	// errCaller is a request whose caller cannot be established (400, or 401 for a bad token);
	// errCallerScoped a caller this pod may not act for (a workspace acts for its owner only).
	errCaller       = errors.New("bad caller")
	errCallerToken  = errors.New("caller token rejected")
	errCallerScoped = errors.New("caller not allowed here")
	errNoBroker     = errors.New("workload identity (GCP) needs the Warden broker: this sidecar runs in local mode (--policy); run it with --broker-url")
	errStorageLocal = errors.New("credentials for Cloud Storage need the Warden broker: this sidecar runs in local mode (--policy); run it with --broker-url")
)

// statuses is the one place the sidecar decides an error's answer. Every exported error of the
// packages it calls is listed (a test holds it to that).
var statuses = httpjson.Mapping{
	{Err: errBody, Status: http.StatusBadRequest, Code: httpjson.CodeBadRequest},
	{Err: errCaller, Status: http.StatusBadRequest, Code: httpjson.CodeBadRequest},
	{Err: errCallerToken, Status: http.StatusUnauthorized, Code: httpjson.CodeUnauthorized},
	{Err: errCallerScoped, Status: http.StatusForbidden, Code: httpjson.CodeForbidden},
	{Err: errDenied, Status: http.StatusForbidden, Code: httpjson.CodeForbidden},
	{Err: errNoBroker, Status: http.StatusNotImplemented, Code: httpjson.CodeNotImplemented},
	{Err: errStorageLocal, Status: http.StatusNotImplemented, Code: httpjson.CodeNotImplemented},

	{Err: stage.ErrBadPath, Status: http.StatusBadRequest, Code: httpjson.CodeBadRequest},
	{Err: stage.ErrBadRequest, Status: http.StatusBadRequest, Code: httpjson.CodeBadRequest},
	{Err: stage.ErrNotRegular, Status: http.StatusBadRequest, Code: httpjson.CodeBadRequest},
	{Err: stage.ErrForbidden, Status: http.StatusForbidden, Code: httpjson.CodeForbidden},
	{Err: stage.ErrNotFound, Status: http.StatusNotFound, Code: httpjson.CodeNotFound},
	{Err: stage.ErrQuota, Status: http.StatusInsufficientStorage, Code: httpjson.CodeInsufficientStorage},
	{Err: stage.ErrNoSpace, Status: http.StatusInsufficientStorage, Code: httpjson.CodeInsufficientStorage},
	{Err: stage.ErrChanged, Status: http.StatusConflict, Code: httpjson.CodeConflict},

	{Err: grants.ErrUnknownOwner, Status: http.StatusForbidden, Code: httpjson.CodeForbidden},
	{Err: grants.ErrUnavailable, Status: http.StatusServiceUnavailable, Code: httpjson.CodeUnavailable},

	{Err: secrets.ErrNotConfigured, Status: http.StatusNotImplemented, Code: httpjson.CodeNotImplemented},
	{Err: secrets.ErrNotFound, Status: http.StatusNotFound, Code: httpjson.CodeNotFound},
	{Err: secrets.ErrConflict, Status: http.StatusConflict, Code: httpjson.CodeConflict},
	{Err: secrets.ErrTooLarge, Status: http.StatusRequestEntityTooLarge, Code: httpjson.CodePayloadTooLarge},
	{Err: secrets.ErrForbidden, Status: http.StatusForbidden, Code: httpjson.CodeForbidden},
	{Err: secrets.ErrUnavailable, Status: http.StatusServiceUnavailable, Code: httpjson.CodeUnavailable},
	{Err: secrets.ErrBadKey, Status: http.StatusBadRequest, Code: httpjson.CodeBadRequest},
	{Err: secrets.ErrBadValue, Status: http.StatusBadRequest, Code: httpjson.CodeBadRequest},

	{Err: context.DeadlineExceeded, Status: http.StatusServiceUnavailable, Code: httpjson.CodeTimeout},
}

package broker

import (
	"context"
	"errors"
	"net/http"

	"github.com/warden-dev/warden/internal/httpjson"
	"github.com/warden-dev/warden/pkg/cloudstorage"
	"github.com/warden-dev/warden/pkg/grants"
	"github.com/warden-dev/warden/pkg/identity"
	"github.com/warden-dev/warden/pkg/secrets"
)

// errAuth is a request whose token does not identify a Warden sidecar (401); errForbidden is a
// verified pod that may not use the broker (403).
var (
	errAuth      = errors.New("unauthenticated")
	errForbidden = errors.New("forbidden")
	errBadInput  = errors.New("bad request")
	// errUnavailable is a dependency outage that is not a grant source's (TokenReview for admins).
	errUnavailable = grants.ErrUnavailable
)

var errGCPOff = errors.New("GCP workload identity is not enabled on this broker (start the webhook with --gcp-identity)")

// statuses is the one place the broker decides an error's answer. Every error the broker and
// the packages it calls can return is listed (a test holds it to that).
var statuses = httpjson.Mapping{
	{Err: errAuth, Status: http.StatusUnauthorized, Code: httpjson.CodeUnauthorized},
	{Err: errForbidden, Status: http.StatusForbidden, Code: httpjson.CodeForbidden},
	{Err: errBadInput, Status: http.StatusBadRequest, Code: httpjson.CodeBadRequest},
	{Err: errGCPOff, Status: http.StatusNotImplemented, Code: httpjson.CodeNotImplemented},
	{Err: grants.ErrUnknownOwner, Status: http.StatusForbidden, Code: httpjson.CodeForbidden},
	{Err: grants.ErrUnavailable, Status: http.StatusServiceUnavailable, Code: httpjson.CodeUnavailable},
	{Err: identity.ErrNotMember, Status: http.StatusForbidden, Code: httpjson.CodeForbidden},
	{Err: identity.ErrUnknownOrg, Status: http.StatusNotFound, Code: httpjson.CodeNotFound},
	{Err: identity.ErrNoDefaultOrg, Status: http.StatusNotFound, Code: httpjson.CodeNotFound},
	{Err: identity.ErrIAMUnavailable, Status: http.StatusServiceUnavailable, Code: httpjson.CodeUnavailable},
	{Err: identity.ErrClusterUnavailable, Status: http.StatusServiceUnavailable, Code: httpjson.CodeUnavailable},
	{Err: identity.ErrNoPolicy, Status: http.StatusServiceUnavailable, Code: httpjson.CodeUnavailable},
	{Err: identity.ErrIAMDenied, Status: http.StatusBadGateway, Code: httpjson.CodeIAMDenied},
	{Err: identity.ErrNoProject, Status: http.StatusUnprocessableEntity, Code: httpjson.CodeInvalidPolicy},
	{Err: identity.ErrBadEdit, Status: http.StatusUnprocessableEntity, Code: httpjson.CodeInvalidPolicy},
	{Err: errStorageOff, Status: http.StatusNotImplemented, Code: httpjson.CodeNotImplemented},
	{Err: errNoSpace, Status: http.StatusNotFound, Code: httpjson.CodeNotFound},
	{Err: cloudstorage.ErrUnavailable, Status: http.StatusServiceUnavailable, Code: httpjson.CodeUnavailable},
	{Err: cloudstorage.ErrDenied, Status: http.StatusBadGateway, Code: httpjson.CodeGCPDenied},
	{Err: cloudstorage.ErrBadInput, Status: http.StatusBadRequest, Code: httpjson.CodeBadRequest},
	{Err: cloudstorage.ErrNotLoadingZone, Status: http.StatusBadRequest, Code: httpjson.CodeBadRequest},
	{Err: cloudstorage.ErrNoTopic, Status: http.StatusConflict, Code: httpjson.CodeConflict},
	{Err: cloudstorage.ErrNothingToCommit, Status: http.StatusConflict, Code: httpjson.CodeConflict},
	{Err: cloudstorage.ErrTooMany, Status: http.StatusRequestEntityTooLarge, Code: httpjson.CodePayloadTooLarge},
	{Err: errSecretsOff, Status: http.StatusNotImplemented, Code: httpjson.CodeNotImplemented},
	{Err: errNoOwner, Status: http.StatusNotFound, Code: httpjson.CodeNotFound},
	{Err: secrets.ErrNotFound, Status: http.StatusNotFound, Code: httpjson.CodeNotFound},
	{Err: secrets.ErrConflict, Status: http.StatusConflict, Code: httpjson.CodeConflict},
	{Err: secrets.ErrTooLarge, Status: http.StatusRequestEntityTooLarge, Code: httpjson.CodePayloadTooLarge},
	// Vault refusing the broker is the broker's setup, not the person's rights (RBAC passed).
	{Err: secrets.ErrForbidden, Status: http.StatusBadGateway, Code: httpjson.CodeVaultDenied},
	{Err: secrets.ErrUnavailable, Status: http.StatusServiceUnavailable, Code: httpjson.CodeUnavailable},
	{Err: secrets.ErrBadKey, Status: http.StatusBadRequest, Code: httpjson.CodeBadRequest},
	{Err: secrets.ErrBadValue, Status: http.StatusBadRequest, Code: httpjson.CodeBadRequest},
	{Err: secrets.ErrNotConfigured, Status: http.StatusNotImplemented, Code: httpjson.CodeNotImplemented},
	{Err: context.DeadlineExceeded, Status: http.StatusServiceUnavailable, Code: httpjson.CodeTimeout},
}

package sidecar

import (
	"context"
	"fmt"
	"net/http"

	"github.com/warden-dev/warden/pkg/audit"
	"github.com/warden-dev/warden/pkg/brokerapi"
	"github.com/warden-dev/warden/pkg/grants"
)

// Cloud Storage: the sidecar establishes the caller, forwards the request to the broker with
// the pod's token, audits, and passes the broker's answer or refusal on. App code never holds
// more than the one space and access kind it asked for, for minutes.

// StorageBroker is the broker's storage API (*brokerapi.Client in production).
type StorageBroker interface {
	StorageCredentials(ctx context.Context, req brokerapi.CredentialsRequest) (brokerapi.Credential, error)
	StorageSignedURL(ctx context.Context, req brokerapi.SignedURLRequest) (brokerapi.SignedURL, error)
	StorageCommit(ctx context.Context, req brokerapi.CommitRequest) (brokerapi.Commit, error)
}

// beginStorage is forward for the storage endpoints.
func (s *Server) beginStorage(w http.ResponseWriter, r *http.Request, action string, body any, caller *grants.Caller) (request, bool) {
	var off error
	if s.cfg.Storage == nil {
		off = errStorageLocal
	}
	return s.forward(w, r, action, body, caller, off)
}

func (s *Server) storageCredentials(w http.ResponseWriter, r *http.Request) {
	var body brokerapi.CredentialsRequest
	q, ok := s.beginStorage(w, r, audit.ActionStorageCredentials, &body, &body.Caller)
	if !ok {
		return
	}
	q.rec.Org, q.rec.Space, q.rec.Access = body.Org, body.Space, body.Access
	c, err := s.cfg.Storage.StorageCredentials(q.ctx, body)
	if err == nil {
		q.rec.Target = "gs://" + c.Bucket + "/" + c.Prefix
		q.rec.Reason = "expires " + c.ExpiresAt.UTC().Format("2006-01-02T15:04:05Z")
	}
	s.answerForwarded(w, q, err, http.StatusOK, c)
}

func (s *Server) storageSignedURL(w http.ResponseWriter, r *http.Request) {
	var body brokerapi.SignedURLRequest
	q, ok := s.beginStorage(w, r, audit.ActionStorageSignedURL, &body, &body.Caller)
	if !ok {
		return
	}
	q.rec.Org, q.rec.Space, q.rec.Access = body.Org, body.Space, body.Method
	u, err := s.cfg.Storage.StorageSignedURL(q.ctx, body)
	if err == nil {
		q.rec.Target = "gs://" + u.Bucket + "/" + u.Object
		q.rec.Reason = "expires " + u.ExpiresAt.UTC().Format("2006-01-02T15:04:05Z")
	}
	s.answerForwarded(w, q, err, http.StatusOK, u)
}

func (s *Server) storageCommit(w http.ResponseWriter, r *http.Request) {
	var body brokerapi.CommitRequest
	q, ok := s.beginStorage(w, r, audit.ActionStorageCommit, &body, &body.Caller)
	if !ok {
		return
	}
	q.rec.Org, q.rec.Space, q.rec.Access = body.Org, body.Space, "commit"
	c, err := s.cfg.Storage.StorageCommit(q.ctx, body)
	if err == nil {
		q.rec.Target = "gs://" + c.Bucket + "/" + c.RootDir
		q.rec.Reason = fmt.Sprintf("%d objects, message %s on %s", len(c.Objects), c.MessageID, c.Topic)
	}
	s.answerForwarded(w, q, err, http.StatusOK, c)
}

package sidecar

import (
	"fmt"
	"net/http"

	"github.com/warden-dev/warden/internal/httpjson"
	"github.com/warden-dev/warden/pkg/audit"
	"github.com/warden-dev/warden/pkg/secrets"
	"github.com/warden-dev/warden/pkg/sidecarapi"
)

// SecretStore is the owner's secrets (pkg/secrets in production).
type SecretStore = secrets.KV

// Audit actions of the secrets API. Audit lines name keys, never values.
const (
	actionSecretList   = "secret-list"
	actionSecretGet    = "secret-get"
	actionSecretSet    = "secret-set"
	actionSecretDelete = "secret-delete"
)

// secretBegin starts a secrets request, answering 501 when no Vault is configured.
func (s *Server) secretBegin(w http.ResponseWriter, r *http.Request, action string) (request, bool) {
	q := request{rec: audit.Record{Action: action, Owner: s.cfg.Owner}}
	if c, err := s.cfg.Callers.Caller(r); err == nil {
		q.rec.Caller = c.Name()
	}
	if s.cfg.Secrets == nil {
		s.fail(w, q, secrets.ErrNotConfigured)
		return q, false
	}
	return q, true
}

func (s *Server) secretsList(w http.ResponseWriter, r *http.Request) {
	all := r.URL.Query().Get("all")
	action := actionSecretList
	if all == "true" {
		action = actionSecretGet
	}
	q, ok := s.secretBegin(w, r, action)
	if !ok {
		return
	}
	switch all {
	case "", "false":
		keys, v, err := s.cfg.Secrets.Keys(r.Context())
		if err != nil {
			s.fail(w, q, err)
			return
		}
		q.rec.Reason = fmt.Sprintf("%d keys", len(keys))
		s.secretDone(w, q, v, sidecarapi.SecretKeys{Keys: keys})
	case "true":
		data, v, err := s.cfg.Secrets.All(r.Context())
		if err != nil {
			s.fail(w, q, err)
			return
		}
		q.rec.Source = fmt.Sprintf("all %d keys", len(data))
		s.secretDone(w, q, v, data)
	default:
		s.fail(w, q, fmt.Errorf("%w: all must be true or false", errBody))
	}
}

func (s *Server) secretGet(w http.ResponseWriter, r *http.Request) {
	q, ok := s.secretBegin(w, r, actionSecretGet)
	if !ok {
		return
	}
	key := r.PathValue("key")
	q.rec.Source = key
	val, v, err := s.cfg.Secrets.Get(r.Context(), key)
	if err != nil {
		s.fail(w, q, err)
		return
	}
	s.secretDone(w, q, v, sidecarapi.Secret{Key: key, Value: val})
}

// secretDone audits a successful call and answers with the version as ETag: 200 with body, or
// 204 when body is nil.
func (s *Server) secretDone(w http.ResponseWriter, q request, version int, body any) {
	q.rec.Outcome = audit.Allowed
	s.cfg.Audit.Log(q.rec)
	w.Header().Set("ETag", secrets.ETag(version))
	if body == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	httpjson.Write(w, http.StatusOK, body)
}

func (s *Server) secretsPut(w http.ResponseWriter, r *http.Request) {
	q, ok := s.secretBegin(w, r, actionSecretSet)
	if !ok {
		return
	}
	ifv, err := secrets.IfMatch(r)
	if err != nil {
		s.fail(w, q, err)
		return
	}
	// The limit applies to the secrets; the body may carry a little JSON around them.
	data, err := secrets.DecodeValues(w, r, s.secretLimit())
	if err != nil {
		s.fail(w, q, err)
		return
	}
	q.rec.Source = fmt.Sprintf("%d keys", len(data))
	v, err := s.cfg.Secrets.SetAll(r.Context(), data, ifv)
	if err != nil {
		s.fail(w, q, err)
		return
	}
	s.secretDone(w, q, v, nil)
}

func (s *Server) secretDelete(w http.ResponseWriter, r *http.Request) {
	q, ok := s.secretBegin(w, r, actionSecretDelete)
	if !ok {
		return
	}
	key := r.PathValue("key")
	q.rec.Source = key
	ifv, err := secrets.IfMatch(r)
	if err != nil {
		s.fail(w, q, err)
		return
	}
	v, err := s.cfg.Secrets.Delete(r.Context(), key, ifv)
	if err != nil {
		s.fail(w, q, err)
		return
	}
	s.secretDone(w, q, v, nil)
}

// secretsDeleteAll is DELETE /v1/secrets: every secret, as one new empty version (the
// proposal's --delete-all).
func (s *Server) secretsDeleteAll(w http.ResponseWriter, r *http.Request) {
	q, ok := s.secretBegin(w, r, actionSecretDelete)
	if !ok {
		return
	}
	q.rec.Source = "all keys"
	ifv, err := secrets.IfMatch(r)
	if err != nil {
		s.fail(w, q, err)
		return
	}
	v, err := s.cfg.Secrets.DeleteAll(r.Context(), ifv)
	if err != nil {
		s.fail(w, q, err)
		return
	}
	s.secretDone(w, q, v, nil)
}

func (s *Server) secretLimit() int {
	if s.cfg.SecretsMaxBytes > 0 {
		return s.cfg.SecretsMaxBytes
	}
	return secrets.DefaultMaxBytes
}

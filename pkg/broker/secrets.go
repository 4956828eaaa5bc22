package broker

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/warden-dev/warden/internal/httpjson"
	"github.com/warden-dev/warden/pkg/brokerapi"
	"github.com/warden-dev/warden/pkg/policy"
	"github.com/warden-dev/warden/pkg/secrets"
)

// An owner's secrets from outside its pods (the VDK seed: a data-job owner manages its job's
// secrets from a workspace or a laptop): the same API as the sidecar's /v1/secrets, under
// /v1/owners/{namespace}/{name}/secrets, for people RBAC lets get, update or delete the
// owner's secrets subresource. The broker reaches Vault with its own login (--broker-vault-role).

var (
	errSecretsOff = errors.New("secrets from outside a pod are not enabled on this broker (start the webhook with --broker-vault-role)")
	errNoOwner    = errors.New("no such owner")
)

// OwnerSecrets opens an owner's secrets ("namespace/name") in Vault.
type OwnerSecrets func(owner string) (secrets.KV, error)

func (s *Server) registerSecrets() {
	s.mux.Route(brokerapi.PathOwnerSecrets, httpjson.Methods{
		http.MethodGet:    s.ownerSecrets("get", s.secretsList),
		http.MethodPut:    s.ownerSecrets("update", s.secretsPut),
		http.MethodDelete: s.ownerSecrets("delete", s.secretsDeleteAll),
	})
	s.mux.Route(brokerapi.PathOwnerSecret, httpjson.Methods{
		http.MethodGet:    s.ownerSecrets("get", s.secretGet),
		http.MethodDelete: s.ownerSecrets("delete", s.secretDelete),
	})
}

// secretsCall is one authorized request on an owner's secrets.
type secretsCall struct {
	kv     secrets.KV
	owner  string
	person string
}

// ownerSecrets authenticates the person, checks the owner exists and RBAC allows verb on its
// secrets, opens them, serves, and writes one audit line (keys, never values).
func (s *Server) ownerSecrets(verb string, serve func(http.ResponseWriter, *http.Request, secretsCall) (string, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := s.openOwnerSecrets(r, verb)
		what := ""
		if err == nil {
			what, err = serve(w, r, c)
		}
		outcome, reason := "allowed", what
		if err != nil {
			outcome, reason = "denied", err.Error()
			s.fail(w, r, err)
		}
		s.opts.Log.InfoContext(r.Context(), "owner secrets", "audit", true, "verb", verb, "path", r.URL.Path,
			"user", c.person, "owner", c.owner, "outcome", outcome, "reason", reason)
	}
}

func (s *Server) openOwnerSecrets(r *http.Request, verb string) (secretsCall, error) {
	ns, name := r.PathValue("namespace"), r.PathValue("name")
	c := secretsCall{owner: ns + "/" + name}
	if s.opts.Secrets == nil {
		return c, errSecretsOff
	}
	user, err := s.person(r.Context(), r)
	if err != nil {
		return c, err
	}
	c.person = user.Username
	if err := policy.ValidServiceAccount(c.owner); err != nil {
		return c, fmt.Errorf("%w: owner: %v", errBadInput, err)
	}
	if err := s.permit(r.Context(), user, ownerAccess{verb: verb, subresource: "secrets", namespace: ns, name: name}); err != nil {
		return c, err
	}
	// Only after RBAC: whether an owner exists is not told to people who may not ask.
	if v := s.opts.Policy(); v == nil {
		return c, errNoPolicy
	} else if _, ok := v.Owner(c.owner); !ok {
		return c, fmt.Errorf("%w: %s is not an owner in the policy", errNoOwner, c.owner)
	}
	c.kv, err = s.opts.Secrets(c.owner)
	return c, err
}

func (s *Server) secretsList(w http.ResponseWriter, r *http.Request, c secretsCall) (string, error) {
	switch r.URL.Query().Get("all") {
	case "", "false":
		keys, v, err := c.kv.Keys(r.Context())
		if err == nil {
			writeVersioned(w, v, map[string]any{"keys": keys})
		}
		return fmt.Sprintf("%d keys", len(keys)), err
	case "true":
		data, v, err := c.kv.All(r.Context())
		if err == nil {
			writeVersioned(w, v, data)
		}
		return fmt.Sprintf("all %d keys", len(data)), err
	}
	return "", fmt.Errorf("%w: all must be true or false", errBadInput)
}

func (s *Server) secretGet(w http.ResponseWriter, r *http.Request, c secretsCall) (string, error) {
	key := r.PathValue("key")
	val, v, err := c.kv.Get(r.Context(), key)
	if err == nil {
		writeVersioned(w, v, map[string]any{"key": key, "value": val})
	}
	return key, err
}

func (s *Server) secretsPut(w http.ResponseWriter, r *http.Request, c secretsCall) (string, error) {
	return s.secretsWrite(w, r, func(ctx context.Context, ifv *int) (string, int, error) {
		data, err := secrets.DecodeValues(w, r, secrets.DefaultMaxBytes)
		if err != nil {
			return "", 0, err
		}
		v, err := c.kv.SetAll(ctx, data, ifv)
		return fmt.Sprintf("set %d keys", len(data)), v, err
	})
}

func (s *Server) secretsDeleteAll(w http.ResponseWriter, r *http.Request, c secretsCall) (string, error) {
	return s.secretsWrite(w, r, func(ctx context.Context, ifv *int) (string, int, error) {
		v, err := c.kv.DeleteAll(ctx, ifv)
		return "deleted all keys", v, err
	})
}

func (s *Server) secretDelete(w http.ResponseWriter, r *http.Request, c secretsCall) (string, error) {
	return s.secretsWrite(w, r, func(ctx context.Context, ifv *int) (string, int, error) {
		v, err := c.kv.Delete(ctx, r.PathValue("key"), ifv)
		return "deleted " + r.PathValue("key"), v, err
	})
}

// secretsWrite runs a write with the request's If-Match and answers 204 with the new ETag.
func (s *Server) secretsWrite(w http.ResponseWriter, r *http.Request, write func(context.Context, *int) (string, int, error)) (string, error) {
	ifv, err := secrets.IfMatch(r)
	if err != nil {
		return "", err
	}
	what, v, err := write(r.Context(), ifv)
	if err == nil {
		w.Header().Set("ETag", secrets.ETag(v))
		w.WriteHeader(http.StatusNoContent)
	}
	return what, err
}

func writeVersioned(w http.ResponseWriter, version int, body any) {
	w.Header().Set("ETag", secrets.ETag(version))
	httpjson.Write(w, http.StatusOK, body)
}

package sidecarapi

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/warden-dev/warden/pkg/brokerapi"
)

// Secrets is the secrets API at one prefix: the pod's own (PathSecrets at its sidecar), or an
// owner's at the broker for a person outside its pods (brokerapi.PathOwnerSecrets), which has
// the same bodies and ETags. Versions are ETags: a write with the version read fails (409) if
// someone wrote in between, instead of losing their change.
type Secrets struct {
	c      *Client
	prefix string
	key    func(key string) string
}

// Secrets is the pod owner's secrets, through the sidecar.
func (c *Client) Secrets() Secrets {
	return Secrets{c: c, prefix: PathSecrets, key: func(k string) string { return brokerapi.Expand(PathSecret, k) }}
}

// OwnerSecrets is an owner's secrets at the broker: c's BaseURL is the broker's and its HTTP
// client sends the person's Kubernetes bearer token.
func (c *Client) OwnerSecrets(namespace, name string) Secrets {
	return Secrets{c: c, prefix: brokerapi.Expand(brokerapi.PathOwnerSecrets, namespace, name),
		key: func(k string) string { return brokerapi.Expand(brokerapi.PathOwnerSecret, namespace, name, k) }}
}

// Keys lists the names and the version.
func (s Secrets) Keys(ctx context.Context) ([]string, string, error) {
	var k SecretKeys
	v, err := s.c.Call(ctx, http.MethodGet, s.prefix, nil, "", &k)
	return k.Keys, v, err
}

// All reads every secret and the version.
func (s Secrets) All(ctx context.Context) (map[string]json.RawMessage, string, error) {
	all := map[string]json.RawMessage{}
	v, err := s.c.Call(ctx, http.MethodGet, withQuery(s.prefix, "all", "true"), nil, "", &all)
	return all, v, err
}

// Get reads one secret's value and the version.
func (s Secrets) Get(ctx context.Context, key string) (json.RawMessage, string, error) {
	var sec Secret
	v, err := s.c.Call(ctx, http.MethodGet, s.key(key), nil, "", &sec)
	return sec.Value, v, err
}

// Put replaces every secret with all, if the version is still ifMatch ("" unconditionally),
// and returns the new version.
func (s Secrets) Put(ctx context.Context, all map[string]json.RawMessage, ifMatch string) (string, error) {
	return s.c.Call(ctx, http.MethodPut, s.prefix, all, ifMatch, nil)
}

// Delete removes one secret (ifMatch as for Put).
func (s Secrets) Delete(ctx context.Context, key, ifMatch string) (string, error) {
	return s.c.Call(ctx, http.MethodDelete, s.key(key), nil, ifMatch, nil)
}

// DeleteAll removes every secret, as one new empty version.
func (s Secrets) DeleteAll(ctx context.Context, ifMatch string) (string, error) {
	return s.c.Call(ctx, http.MethodDelete, s.prefix, nil, ifMatch, nil)
}

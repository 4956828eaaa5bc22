package sidecarapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warden-dev/warden/internal/httpjson"
	"github.com/warden-dev/warden/pkg/brokerapi"
)

// seen is one request as a stand-in server received it.
type seen struct {
	method, uri, body, caller, ifMatch string
}

// stub answers every request with status and body, and records it.
func stub(t *testing.T, status int, body string) (*Client, *seen) {
	t.Helper()
	var got seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = seen{r.Method, r.URL.RequestURI(), string(b), r.Header.Get(CallerHeader), r.Header.Get("If-Match")}
		w.Header().Set("ETag", `"7"`)
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return &Client{BaseURL: srv.URL + "/", HTTP: srv.Client(), Caller: "ann"}, &got
}

// Each method calls the path and method the sidecar registers, with placeholders escaped.
func TestClientRequests(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name         string
		call         func(c *Client) error
		method, uri  string
		body, answer string
	}{
		{"datasets", func(c *Client) error { _, err := c.Datasets(ctx); return err }, "GET", "/v1/datasets", "", `{"datasets":[]}`},
		{"access", func(c *Client) error { _, err := c.Access(ctx, "prod-1"); return err }, "GET", "/v1/datasets/prod-1/access", "", `{"dataset_id":"prod-1"}`},
		{"files", func(c *Client) error { _, err := c.Files(ctx, "d", "a b/c", ""); return err }, "GET", "/v1/datasets/d/files?path=a+b%2Fc", "", `{"entries":[]}`},
		{"files of a snapshot", func(c *Client) error { _, err := c.Files(ctx, "d", "", "old"); return err }, "GET", "/v1/datasets/d/files?snapshot=old", "", `{}`},
		{"stage", func(c *Client) error {
			_, err := c.Stage(ctx, "d", StageRequest{Path: "x.csv", TTLSeconds: 60})
			return err
		}, "POST", "/v1/datasets/d/stage", `{"path":"x.csv","ttl_seconds":60}`, `{"name":"n"}`},
		{"delete staged", func(c *Client) error { return c.DeleteStaged(ctx, "n/../x") }, "DELETE", "/v1/staged/n%2F..%2Fx", "", ``},
		{"orgs", func(c *Client) error { _, err := c.Orgs(ctx); return err }, "GET", "/v1/identity/orgs", "", `{"orgs":[]}`},
		{"bind", func(c *Client) error { _, err := c.Bind(ctx, BindRequest{Org: "org1"}); return err }, "POST", "/v1/identity/gcp", `{"org":"org1"}`, `{}`},
		{"reset", func(c *Client) error { return c.ResetIdentity(ctx) }, "DELETE", "/v1/identity/gcp", "", ``},
		{"what may I do", func(c *Client) error { _, err := c.WhatMayIDo(ctx, "read"); return err }, "GET", "/v1/access?permission=read", "", `{}`},
		// The caller is the sidecar's to fill in: an empty one is not sent.
		{"storage credentials", func(c *Client) error {
			_, err := c.StorageCredentials(ctx, brokerapi.CredentialsRequest{Org: "o", Space: "s", Access: "read"})
			return err
		}, "POST", "/v1/storage/credentials", `{"org":"o","space":"s","access":"read"}`, `{}`},
		{"signed URL", func(c *Client) error {
			_, err := c.StorageSignedURL(ctx, brokerapi.SignedURLRequest{Org: "o", Space: "s", Object: "a", Method: "GET"})
			return err
		}, "POST", "/v1/storage/signed-url", `{"org":"o","space":"s","object":"a","method":"GET"}`, `{}`},
		{"commit", func(c *Client) error {
			_, err := c.StorageCommit(ctx, brokerapi.CommitRequest{Org: "o", Space: "s", RootDir: "b1"})
			return err
		}, "POST", "/v1/storage/commit", `{"org":"o","space":"s","root_dir":"b1"}`, `{}`},
		{"secret keys", func(c *Client) error { _, _, err := c.Secrets().Keys(ctx); return err }, "GET", "/v1/secrets", "", `{"keys":[]}`},
		{"all secrets", func(c *Client) error { _, _, err := c.Secrets().All(ctx); return err }, "GET", "/v1/secrets?all=true", "", `{}`},
		{"one secret", func(c *Client) error { _, _, err := c.Secrets().Get(ctx, "db/pw"); return err }, "GET", "/v1/secrets/db%2Fpw", "", `{"key":"db/pw","value":1}`},
		{"put secrets", func(c *Client) error {
			_, err := c.Secrets().Put(ctx, map[string]json.RawMessage{"a": json.RawMessage(`1`)}, `"6"`)
			return err
		}, "PUT", "/v1/secrets", `{"a":1}`, ``},
		{"delete a secret", func(c *Client) error { _, err := c.Secrets().Delete(ctx, "a", ""); return err }, "DELETE", "/v1/secrets/a", "", ``},
		{"delete all secrets", func(c *Client) error { _, err := c.Secrets().DeleteAll(ctx, ""); return err }, "DELETE", "/v1/secrets", "", ``},
		{"an owner's secrets at the broker", func(c *Client) error { _, _, err := c.OwnerSecrets("apps", "etl").Get(ctx, "k"); return err }, "GET", "/v1/owners/apps/etl/secrets/k", "", `{}`},
		{"all of an owner's secrets", func(c *Client) error { _, err := c.OwnerSecrets("apps", "etl").DeleteAll(ctx, ""); return err }, "DELETE", "/v1/owners/apps/etl/secrets", "", ``},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, got := stub(t, http.StatusOK, tc.answer)
			require.NoError(t, tc.call(c))
			assert.Equal(t, tc.method, got.method)
			assert.Equal(t, tc.uri, got.uri)
			if tc.body == "" {
				assert.Empty(t, got.body)
			} else {
				assert.JSONEq(t, tc.body, got.body)
			}
			assert.Equal(t, "ann", got.caller)
		})
	}
}

func TestClientAnswers(t *testing.T) {
	ctx := context.Background()
	c, got := stub(t, http.StatusOK, `{"key":"k","value":{"port":5432}}`)
	v, etag, err := c.Secrets().Get(ctx, "k")
	require.NoError(t, err)
	assert.JSONEq(t, `{"port":5432}`, string(v))
	assert.Equal(t, `"7"`, etag)
	_, err = c.Secrets().Put(ctx, map[string]json.RawMessage{}, etag)
	require.NoError(t, err)
	assert.Equal(t, `"7"`, got.ifMatch, "writes carry the version read")

	// A refused dataset is an answer: Allowed tells.
	c, _ = stub(t, http.StatusForbidden, `{"dataset_id":"d","owner":{"name":"apps/etl","can_read":true},"caller":{"name":"bob","can_read":false}}`)
	a, err := c.Access(ctx, "d")
	require.NoError(t, err)
	assert.False(t, a.Allowed())
	assert.Equal(t, "bob", a.Caller.Name)
}

func TestClientErrors(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name, answer string
		status       int
		want         Error
	}{
		{"an error body", `{"error":"secret not found","code":"not_found"}`, 404, Error{Status: 404, Code: httpjson.CodeNotFound, Message: "secret not found"}},
		{"a refused dataset without a decision", `{"error":"owner is not in the Warden policy","code":"forbidden"}`, 403, Error{Status: 403, Code: httpjson.CodeForbidden, Message: "owner is not in the Warden policy"}},
		{"no body", ``, 502, Error{Status: 502, Message: "GET /v1/datasets/d/access: 502 Bad Gateway"}},
		{"not JSON", `<html>`, 500, Error{Status: 500, Message: "GET /v1/datasets/d/access: 500 Internal Server Error"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := stub(t, tc.status, tc.answer)
			_, err := c.Access(ctx, "d")
			var e *Error
			require.ErrorAs(t, err, &e)
			e.Body = nil
			assert.Equal(t, tc.want, *e)
			assert.Contains(t, err.Error(), tc.want.Message)
		})
	}

	c, _ := stub(t, http.StatusOK, `{"datasets":`)
	_, err := c.Datasets(ctx)
	assert.ErrorIs(t, err, ErrUnreachable, "a broken answer is no answer")
	c.BaseURL = "http://127.0.0.1:1"
	_, err = c.Datasets(ctx)
	assert.ErrorIs(t, err, ErrUnreachable)
	assert.False(t, errors.As(err, new(*Error)))
}

func TestFromEnv(t *testing.T) {
	t.Setenv("WARDEN_PORT", "")
	_, err := FromEnv()
	assert.ErrorIs(t, err, ErrNoPort)
	t.Setenv("WARDEN_PORT", "8500")
	c, err := FromEnv()
	require.NoError(t, err)
	assert.Equal(t, "http://127.0.0.1:8500", c.BaseURL)
}

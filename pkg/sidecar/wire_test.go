package sidecar

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warden-dev/warden/internal/httpjson"
	"github.com/warden-dev/warden/pkg/brokerapi"
	"github.com/warden-dev/warden/pkg/sidecarapi"
)

// The server answers the wire package's client: the paths it registers are sidecarapi's, and its
// answers decode into sidecarapi's types.
func TestServerSpeaksTheWirePackage(t *testing.T) {
	h := newHarness(t, "apps/svc-prod-app-1", "prod", func(c *Config) { c.Storage = &recordingStorage{} })
	c := &sidecarapi.Client{BaseURL: h.srv.URL, HTTP: h.srv.Client(), Caller: "user-ds-1"}
	ctx := context.Background()
	var staged sidecarapi.Staged
	for _, tc := range []struct {
		name string
		call func() error
		code httpjson.Code // "" for success
	}{
		{"list", func() error {
			l, err := c.Datasets(ctx)
			if err == nil && (len(l) == 0 || l[0].ID == "") {
				err = errors.New("no datasets decoded")
			}
			return err
		}, ""},
		{"access allowed", func() error {
			a, err := c.Access(ctx, "prod-dataset-1")
			if err == nil && !a.Allowed() {
				err = errors.New("refused")
			}
			return err
		}, ""},
		{"access refused is an answer", func() error {
			a, err := c.Access(ctx, "prod-dataset-3")
			if err == nil && (a.Allowed() || a.Caller.Name != "user-ds-1") {
				err = errors.New("not the refusal")
			}
			return err
		}, ""},
		{"files", func() error {
			f, err := c.Files(ctx, "prod-dataset-1", "", "")
			if err == nil && len(f.Entries) != 2 {
				err = errors.New("want data.csv and sub")
			}
			return err
		}, ""},
		{"stage", func() error {
			var err error
			staged, err = c.Stage(ctx, "prod-dataset-1", sidecarapi.StageRequest{Path: "data.csv", TTLSeconds: 60})
			if err == nil && (staged.Name == "" || staged.Size == 0) {
				err = errors.New("no copy described")
			}
			return err
		}, ""},
		{"delete the copy", func() error { return c.DeleteStaged(ctx, staged.Name) }, ""},
		{"stage refused", func() error {
			_, err := c.Stage(ctx, "prod-dataset-3", sidecarapi.StageRequest{Path: "data.csv"})
			return err
		}, httpjson.CodeForbidden},
		{"no Vault", func() error { _, _, err := c.Secrets().Keys(ctx); return err }, httpjson.CodeNotImplemented},
		{"no broker for identity", func() error { _, err := c.Orgs(ctx); return err }, httpjson.CodeNotImplemented},
		{"storage, forwarded", func() error {
			_, err := c.StorageCredentials(ctx, brokerapi.CredentialsRequest{Org: "acme", Space: "lz", Access: "read"})
			return err
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if tc.code == "" {
				require.NoError(t, err)
				return
			}
			var e *sidecarapi.Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, tc.code, e.Code)
		})
	}
}

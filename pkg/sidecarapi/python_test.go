package sidecarapi

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warden-dev/warden/pkg/brokerapi"
)

// The Python client (clients/python) spells its paths out; every one it calls must be a path
// the Go wire packages define, placeholders aside, so a path moved on one side fails here.
func TestPythonClientPaths(t *testing.T) {
	placeholder := regexp.MustCompile(`\{[^}]*\}`)
	norm := func(p string) string { return placeholder.ReplaceAllString(p, "{}") }
	var known []string
	for _, p := range []string{
		PathDatasets, PathDatasetAccess, PathDatasetFiles, PathDatasetStage, PathStaged, PathSecrets, PathSecret,
		PathIdentityOrgs, PathIdentityGCP, PathAccess, PathStorageCredentials, PathStorageSignedURL, PathStorageCommit,
		brokerapi.PathOwnerSecrets, brokerapi.PathOwnerSecret,
	} {
		known = append(known, norm(p))
	}
	files, err := filepath.Glob(filepath.Join("..", "..", "clients", "python", "warden_client", "*.py"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	literal := regexp.MustCompile(`f?"(/v1/[^"]*)"`)
	seen := 0
	for _, f := range files {
		src, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, m := range literal.FindAllSubmatch(src, -1) {
			seen++
			p := norm(string(m[1]))
			assert.True(t, slices.Contains(known, p), "%s calls %s, which no Go wire package defines", filepath.Base(f), m[1])
		}
	}
	assert.Greater(t, seen, 10, "the Python client's paths were not found")
}

package contract

import (
	"go/ast"
	"go/constant"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warden-dev/warden/internal/flagenv"
)

func TestParsePodConfig(t *testing.T) {
	for labels, want := range map[string]Workload{"": WorkloadApp, "app": WorkloadApp, "workspace": WorkloadWorkspace, "job": WorkloadJob} {
		l := map[string]string{}
		if labels != "" {
			l[LabelWorkload] = labels
		}
		c, err := ParsePodConfig(l)
		require.NoError(t, err)
		assert.Equal(t, want, c.Workload)
	}
	for _, bad := range []string{"App", "notebook", " app", ""} {
		_, err := ParsePodConfig(map[string]string{LabelWorkload: bad})
		assert.Error(t, err, "%q", bad)
	}
}

func TestOwnerDir(t *testing.T) {
	assert.Equal(t, "apps.svc-prod-app-1", OwnerDir("apps/svc-prod-app-1"))
	assert.Equal(t, "apps.sa.with.dots", OwnerDir("apps/sa.with.dots"))
	// Whatever comes in, the result is one path element that cannot climb.
	for _, in := range []string{"../../etc", "a/../b", "/abs", "a\x00b", "a b/c"} {
		out := OwnerDir(in)
		assert.NotContains(t, out, "/")
		assert.NotContains(t, out, "\x00")
		assert.NotEqual(t, "..", out)
	}
}

// TestEveryKeyIsDocumented keeps docs/contract.md the one place users read the contract: every
// string constant of this package appears there.
func TestEveryKeyIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/contract.md")
	require.NoError(t, err)
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	var parsed []*ast.File
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, 0)
		require.NoError(t, err)
		parsed = append(parsed, af)
	}
	info := &types.Info{Defs: map[*ast.Ident]types.Object{}}
	_, err = (&types.Config{Importer: importer.Default()}).Check("contract", fset, parsed, info)
	require.NoError(t, err)
	n := 0
	for id, obj := range info.Defs {
		c, ok := obj.(*types.Const)
		if !ok || !id.IsExported() || c.Val().Kind() != constant.String || c.Parent() != c.Pkg().Scope() {
			continue
		}
		n++
		v := constant.StringVal(c.Val())
		if c.Name() == "Prefix" || c.Name() == "ReservedNamePrefix" {
			continue // documented as the prefix of the names below
		}
		assert.True(t, strings.Contains(string(doc), v), "%s = %q is not in docs/contract.md", c.Name(), v)
	}
	assert.Greater(t, n, 40, "the constants were found")
}

// TestEnvNamesAreFlags: the sidecar reads its environment through internal/flagenv, so each
// variable the webhook sets must be a flag's name there.
func TestEnvNamesAreFlags(t *testing.T) {
	for env, flag := range map[string]string{EnvPodName: FlagPodName, EnvPodUID: FlagPodUID, EnvBrokerCA: FlagBrokerCA} {
		assert.Equal(t, env, flagenv.Name(EnvPrefix, flag))
	}
}

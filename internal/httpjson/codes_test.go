package httpjson

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The Python client raises one exception class per error code (clients/python's errors.py,
// CODE = "..."): every code Warden's APIs answer with has its class, and the client knows no
// code the servers never send. Both lists are read from source, so adding a code on either
// side without the other fails here.
func TestPythonClientKnowsEveryCode(t *testing.T) {
	goSrc, err := os.ReadFile("httpjson.go")
	require.NoError(t, err)
	pySrc, err := os.ReadFile(filepath.Join("..", "..", "clients", "python", "warden_client", "errors.py"))
	require.NoError(t, err)
	codes := func(re *regexp.Regexp, src []byte) []string {
		var out []string
		for _, m := range re.FindAllSubmatch(src, -1) {
			out = append(out, string(m[1]))
		}
		slices.Sort(out)
		return out
	}
	goCodes := codes(regexp.MustCompile(`(?m)^\s*Code\w+\s+Code = "([a-z_]+)"`), goSrc)
	pyCodes := codes(regexp.MustCompile(`(?m)^\s+CODE = "([a-z_]+)"`), pySrc)
	require.NotEmpty(t, goCodes)
	assert.Equal(t, goCodes, pyCodes, "httpjson's codes and the Python client's exception classes")
}

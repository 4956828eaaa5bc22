package broker

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warden-dev/warden/internal/testing/errdecl"
)

// Every exported error of the packages the broker calls has a deliberate answer.
func TestEveryErrorHasAStatus(t *testing.T) {
	mapped, err := errdecl.Referenced("errors.go", "statuses")
	require.NoError(t, err)
	for _, dir := range []string{"../grants", "../identity", "../secrets"} {
		declared, err := errdecl.Declared(dir)
		require.NoError(t, err)
		require.NotEmpty(t, declared, dir)
		for _, e := range declared {
			assert.Contains(t, mapped, e, "%s has no status in statuses (errors.go)", e)
		}
	}
	for _, r := range statuses {
		assert.NotEqual(t, http.StatusInternalServerError, r.Status, "%v", r.Err)
	}
}

package guard_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/warden-dev/warden/pkg/guard"
)

// PathsOverlap decides whether a tenant's mount reaches into (or contains) Warden's data
// directory, however the tenant spells the path.
func TestPathsOverlap(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"/data", "/data", true},
		{"/data/x", "/data", true},
		{"/data", "/data/x", true},
		{"/", "/data", true},
		{"/data", "/", true},
		{"/database", "/data", false},
		{"/dat", "/data", false},
		{"/data2/x", "/data", false},
		{"data/x", "/data", true},     // relative: cleaned as absolute
		{"/x/../data", "/data", true}, // dot-dot
		{"//data//", "/data", true},   // doubled and trailing slashes
		{"/data/.", "/data", true},
		{"/data/..", "/data", true}, // the parent of the data directory contains it
		{"/other/../database", "/data", false},
		{"", "/data", true}, // empty is the root
	} {
		assert.Equal(t, tc.want, guard.PathsOverlap(tc.a, tc.b), "%q vs %q", tc.a, tc.b)
		assert.Equal(t, tc.want, guard.PathsOverlap(tc.b, tc.a), "%q vs %q (swapped)", tc.b, tc.a)
	}
}

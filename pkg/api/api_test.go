package api

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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

package policy

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSetOrgAccountPreservesTheRest(t *testing.T) {
	doc := "# the policy\nowners:\n  - serviceAccount: apps/a # owner a\n    environment: dev\norgs:\n  - name: org1\n    gcpServiceAccount: old@my-project.iam.gserviceaccount.com\n    members: [serviceAccount:apps/a]\ngcp:\n  project: my-project\n"
	out, err := SetOrgAccount([]byte(doc), "org1", "new@my-project.iam.gserviceaccount.com")
	require.NoError(t, err)
	assert.Contains(t, string(out), "gcpServiceAccount: new@my-project.iam.gserviceaccount.com")
	assert.Contains(t, string(out), "# owner a", "comments survive")
	assert.Contains(t, string(out), "# the policy")
	_, err = SetOrgAccount([]byte(doc), "org9", "x@y.iam.gserviceaccount.com")
	assert.ErrorIs(t, err, ErrNoSuchOrg)
}

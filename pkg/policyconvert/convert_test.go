package policyconvert

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warden-dev/warden/pkg/policy"
)

func TestYAML(t *testing.T) {
	p, err := policy.Parse([]byte(`
owners: [{serviceAccount: apps/svc, environment: prod, user: ann}]
datasets: [{id: sales, snapshot: prod/sales, snapshots: {old: prod/sales-old}, environments: [prod], readers: [user:ann, group:g]}]
groups: {g: [bob]}
orgs: [{name: org1, gcpServiceAccount: a@p.iam.gserviceaccount.com, members: [serviceAccount:apps/svc]}]
gcp: {project: my-project}
`))
	require.NoError(t, err)
	objs, err := Objects(p, "data")
	require.NoError(t, err)
	y, err := YAML(p, objs)
	require.NoError(t, err)
	out := string(y)
	for _, want := range []string{
		"--gcp-project=my-project",
		"kind: Namespace", "name: data", "warden.dev/snapshot-root: .",
		"kind: Owner", "name: apps.svc", "serviceAccount: apps/svc",
		"kind: Dataset", "namespace: data", "snapshot: prod/sales", "old: prod/sales-old", "- group:g",
		"kind: Group", "- bob", "kind: Org", "gcpServiceAccount: a@p.iam.gserviceaccount.com",
	} {
		assert.Contains(t, out, want)
	}
	assert.NotContains(t, out, "status:")
	assert.Equal(t, 5, strings.Count(out, "---\n"), "namespace, owner, group, org, dataset")

	p, err = policy.Parse([]byte("owners: [{serviceAccount: apps/svc, environment: prod}]\ndatasets: [{id: Sales_2026, snapshot: s, readers: [user:a]}]\n"))
	require.NoError(t, err)
	_, err = Objects(p, "")
	assert.ErrorContains(t, err, "rename it in the file first", "a file id that cannot be an object name")
}

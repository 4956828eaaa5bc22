package brokerapi

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestExpand(t *testing.T) {
	for _, tc := range []struct {
		pattern string
		values  []string
		want    string
	}{
		{PathOwnerSecrets, []string{"apps", "etl"}, "/v1/owners/apps/etl/secrets"},
		{PathOwnerSecret, []string{"apps", "etl", "db/pw"}, "/v1/owners/apps/etl/secrets/db%2Fpw"},
		{PathAdminOrgs, []string{"org 1"}, "/v1/admin/orgs/org%201"},
		{PathAdminOrgs, []string{"../x"}, "/v1/admin/orgs/..%2Fx"},
		{PathCheck, nil, PathCheck},
		// Too few values leave the rest of the pattern as it is; extra values are dropped.
		{PathOwnerSecret, []string{"apps"}, "/v1/owners/apps/{name}/secrets/{key}"},
		{PathAdminOrgs, []string{"o", "extra"}, "/v1/admin/orgs/o"},
	} {
		assert.Equal(t, tc.want, Expand(tc.pattern, tc.values...), "%s %q", tc.pattern, tc.values)
	}
}

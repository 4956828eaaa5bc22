package clusterpolicy

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/warden-dev/warden/pkg/policy"
	"github.com/warden-dev/warden/pkg/policyconvert"
)

// The seed scenario (examples/policy.yaml) converted to objects answers every question exactly
// as the file does.
func TestConvertRoundTrip(t *testing.T) {
	file, err := policy.Load(filepath.Join("..", "..", "examples", "policy.yaml"))
	require.NoError(t, err)
	objs, err := policyconvert.Objects(file, "")
	require.NoError(t, err)
	var cobjs []client.Object
	for _, o := range objs {
		cobjs = append(cobjs, o.(client.Object))
	}
	src := newSource(t, false, cobjs...)
	src.Project = file.GCP.Project
	objects := src.View()

	var users []string
	for _, us := range file.Groups {
		users = append(users, us...)
	}
	for _, d := range file.Datasets {
		for _, m := range d.Members() {
			if m.Kind == policy.KindUser {
				users = append(users, m.Name)
			}
		}
	}
	users = append(users, "stranger")
	slices.Sort(users)
	users = slices.Compact(users)

	for _, o := range file.Owners {
		got, ok := objects.Owner(o.ServiceAccount)
		assert.True(t, ok, o.ServiceAccount)
		assert.Equal(t, o, got)
		assert.Equal(t, file.ReadableBy(policy.Principal{ServiceAccount: o.ServiceAccount}), objects.ReadableBy(policy.Principal{ServiceAccount: o.ServiceAccount}), o.ServiceAccount)
		assert.Equal(t, orgNames(file.OrgsOf(policy.Principal{ServiceAccount: o.ServiceAccount})), orgNames(objects.OrgsOf(policy.Principal{ServiceAccount: o.ServiceAccount})), o.ServiceAccount)
		for _, d := range file.Datasets {
			assert.Equal(t, file.OwnerCanRead(d.ID, o.ServiceAccount), objects.OwnerCanRead(d.ID, o.ServiceAccount), "%s reads %s", o.ServiceAccount, d.ID)
		}
	}
	for _, d := range file.Datasets {
		got, ok := objects.Dataset(d.ID)
		require.True(t, ok, d.ID)
		assert.Equal(t, d.Snapshot, got.Snapshot, d.ID)
		assert.Equal(t, d.Snapshots, got.Snapshots, d.ID)
		assert.Equal(t, d.Environments, got.Environments, d.ID)
		for _, u := range users {
			who := policy.Principal{User: u}
			assert.Equal(t, file.CanRead(d.ID, who), objects.CanRead(d.ID, who), "%s reads %s", u, d.ID)
		}
	}
	for _, u := range users {
		who := policy.Principal{User: u}
		assert.ElementsMatch(t, file.ReadableBy(who), objects.ReadableBy(who), u)
	}
	assert.ElementsMatch(t, file.DatasetIDs(), objects.DatasetIDs())

	// Storage: every principal, every space (and one that does not exist), every access kind.
	principals := []policy.Principal{}
	for _, u := range append(users, "integration-test") {
		principals = append(principals, policy.Principal{User: u})
	}
	for _, o := range file.Owners {
		principals = append(principals, policy.Principal{ServiceAccount: o.ServiceAccount})
	}
	spaces := 0
	for _, org := range file.Orgs {
		names := []string{"missing"}
		if org.Storage != nil {
			for _, sp := range org.Storage.Spaces {
				names = append(names, sp.Name)
			}
		}
		for _, name := range names {
			fsp, fok := file.StorageSpace(org.Name, name)
			osp, ook := objects.StorageSpace(org.Name, name)
			require.Equal(t, fok, ook, "%s/%s", org.Name, name)
			if !fok {
				continue
			}
			spaces++
			assert.Equal(t, fsp.Space.Bucket+fsp.Space.Prefix, osp.Space.Bucket+osp.Space.Prefix)
			assert.Equal(t, fsp.Store.Topic, osp.Store.Topic)
			for _, who := range principals {
				for _, a := range policy.Accesses {
					assert.Equal(t, policy.DecideStorage(file, fsp, who, a), policy.DecideStorage(objects, osp, who, a), "%s %s %s/%s", who, a, org.Name, name)
				}
			}
		}
	}
	assert.Equal(t, 3, spaces, "the example has storage to compare")
	assert.Equal(t, file.GCP.Project, objects.Project())
}

func orgNames(orgs []policy.Org) (out []string) {
	for _, o := range orgs {
		out = append(out, o.Name+"="+o.GCPServiceAccount)
	}
	return out
}

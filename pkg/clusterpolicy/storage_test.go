package clusterpolicy

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wardenv1 "github.com/warden-dev/warden/pkg/apis/warden/v1alpha1"
	"github.com/warden-dev/warden/pkg/policy"
)

const storageFile = `
groups:
  loaders: [alice]
orgs:
  - name: org-file
    gcpServiceAccount: f@p.iam.gserviceaccount.com
    storage:
      access: [user:carol]
      topic: file-commits
      spaces:
        - {name: raw, bucket: shared-bucket, prefix: file/raw/, suppliers: [user:carol]}
storage:
  admins: [user:root]
gcp: {project: my-project}
`

func space(org, name string, age int, spec wardenv1.SpaceSpec) *wardenv1.Space {
	spec.Org = org
	return &wardenv1.Space{ObjectMeta: metav1.ObjectMeta{Name: org + "." + name, CreationTimestamp: metav1.NewTime(time.Unix(1_000_000-int64(age), 0))}, Spec: spec}
}

func storageSource(t *testing.T, objs ...client.Object) *Source {
	t.Helper()
	src := newSource(t, false, objs...)
	p, err := policy.Parse([]byte(storageFile))
	require.NoError(t, err)
	src.File = func() *policy.Policy { return p }
	return src
}

func TestStorageView(t *testing.T) {
	objOrg := &wardenv1.Org{ObjectMeta: metav1.ObjectMeta{Name: "org-obj"}, Spec: wardenv1.OrgSpec{
		GCPServiceAccount: "o@p.iam.gserviceaccount.com",
		Storage: &wardenv1.OrgStorage{Access: []wardenv1.Member{"user:ann", "group:loaders"}, Topic: "obj-commits",
			RoleGrants: wardenv1.RoleGrants{Suppliers: []wardenv1.Member{"serviceAccount:apps/etl"}}},
	}}
	src := storageSource(t,
		objOrg,
		space("org-obj", "lz", 10, wardenv1.SpaceSpec{Bucket: "obj-lz", Prefix: "in/", LoadingZone: true,
			RoleGrants: wardenv1.RoleGrants{Suppliers: []wardenv1.Member{"group:loaders"}}}),
		space("org-obj", "pub", 10, wardenv1.SpaceSpec{Bucket: "obj-data", Prefix: "pub/", Visibility: "public"}),
		// Younger and overlapping an older object: not in force.
		space("org-obj", "pub2", 5, wardenv1.SpaceSpec{Bucket: "obj-data", Prefix: "pub/sub/"}),
		// Overlapping the file's space.
		space("org-obj", "steal", 20, wardenv1.SpaceSpec{Bucket: "shared-bucket"}),
		// The file defines org-file/raw.
		space("org-file", "raw", 20, wardenv1.SpaceSpec{Bucket: "shadow-bucket", RoleGrants: wardenv1.RoleGrants{Users: []wardenv1.Member{"user:mallory"}}}),
		// An object space under the file's org is fine when it overlaps nothing.
		space("org-file", "extra", 3, wardenv1.SpaceSpec{Bucket: "other-bucket", Prefix: "x/"}),
		space("no-org", "s", 3, wardenv1.SpaceSpec{Bucket: "lonely-bucket"}),
		&wardenv1.StoragePolicy{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Spec: wardenv1.StoragePolicySpec{
			Admins: []wardenv1.Member{"group:ops"}, AllPublic: wardenv1.AllPublic{Orgs: []wardenv1.Member{"user:pat"}}}},
	)
	v := src.View()

	sp, ok := v.StorageSpace("org-file", "raw")
	require.True(t, ok)
	assert.Equal(t, "shared-bucket", sp.Space.Bucket, "the file's space wins")
	assert.Equal(t, "file-commits", sp.Store.Topic)

	sp, ok = v.StorageSpace("org-obj", "lz")
	require.True(t, ok)
	assert.Equal(t, "o@p.iam.gserviceaccount.com", sp.Org.GCPServiceAccount)
	assert.Equal(t, "obj-commits", sp.Store.Topic)
	assert.True(t, sp.Space.LoadingZone)
	// alice is in the file's group loaders: org access (object Org) and supplier (object Space).
	assert.True(t, policy.DecideStorage(v, sp, policy.Principal{User: "alice"}, policy.AccessDelete).Allowed)
	assert.True(t, policy.DecideStorage(v, sp, policy.Principal{ServiceAccount: "apps/etl"}, policy.AccessUpload).Allowed, "org-wide supplier")
	assert.False(t, policy.DecideStorage(v, sp, policy.Principal{User: "ann"}, policy.AccessRead).Allowed, "org access alone on a private space")

	for _, name := range [][2]string{{"org-obj", "pub2"}, {"org-obj", "steal"}, {"no-org", "s"}, {"org-obj", "nothing"}, {"org-file", "nothing"}} {
		_, ok := v.StorageSpace(name[0], name[1])
		assert.False(t, ok, name)
	}
	_, ok = v.StorageSpace("org-file", "extra")
	assert.True(t, ok)

	// StorageSpaces lists exactly the spaces StorageSpace resolves, the file's first, each once.
	var listed []string
	for _, sp := range v.StorageSpaces() {
		listed = append(listed, sp.Org.Name+"/"+sp.Space.Name)
		got, ok := v.StorageSpace(sp.Org.Name, sp.Space.Name)
		require.True(t, ok, sp.Space.Name)
		assert.Equal(t, got.Space.Bucket, sp.Space.Bucket)
	}
	assert.Contains(t, listed, "org-file/raw")
	assert.Contains(t, listed, "org-file/extra")
	assert.Contains(t, listed, "org-obj/lz")
	for _, gone := range []string{"org-obj/pub2", "org-obj/steal", "no-org/s"} {
		assert.NotContains(t, listed, gone)
	}
	assert.Len(t, slices.Compact(slices.Sorted(slices.Values(listed))), len(listed), "no space twice")

	roles := v.StorageRoles()
	assert.ElementsMatch(t, []string{"user:root", "group:ops"}, roles.Admins, "the file's and the objects' admins")
	pub, _ := v.StorageSpace("org-obj", "pub")
	assert.True(t, policy.DecideStorage(v, pub, policy.Principal{User: "zed", Groups: []string{"ops"}}, policy.AccessDelete).Admin)
	assert.True(t, policy.DecideStorage(v, pub, policy.Principal{User: "root"}, policy.AccessDelete).Admin)
	assert.False(t, policy.DecideStorage(v, pub, policy.Principal{User: "pat"}, policy.AccessRead).Allowed, "a public org role needs a space role too")
}

func TestSpaceStatuses(t *testing.T) {
	src := storageSource(t,
		&wardenv1.Org{ObjectMeta: metav1.ObjectMeta{Name: "org-obj"}, Spec: wardenv1.OrgSpec{GCPServiceAccount: "o@p.iam.gserviceaccount.com"}},
		space("org-obj", "a", 10, wardenv1.SpaceSpec{Bucket: "b-one", Prefix: "a/"}),
		space("org-obj", "b", 10, wardenv1.SpaceSpec{Bucket: "b-one", Prefix: "a/b/"}), // same second: name decides
		space("org-obj", "c", 1, wardenv1.SpaceSpec{Bucket: "shared-bucket", Prefix: "file/"}),
		space("org-obj", "d", 1, wardenv1.SpaceSpec{Bucket: "b-two", Prefix: "../"}),
		space("ghost", "e", 1, wardenv1.SpaceSpec{Bucket: "b-three"}),
		&wardenv1.StoragePolicy{ObjectMeta: metav1.ObjectMeta{Name: "bad"}, Spec: wardenv1.StoragePolicySpec{Admins: []wardenv1.Member{"robot:x"}}},
	)
	st := &Statuses{Source: src}
	want := map[string]string{"org-obj.a": wardenv1.ReasonAccepted, "org-obj.b": wardenv1.ReasonConflict,
		"org-obj.c": wardenv1.ReasonConflict, "org-obj.d": wardenv1.ReasonInvalid, "ghost.e": wardenv1.ReasonUnknownOrg}
	for name, reason := range want {
		var s wardenv1.Space
		require.NoError(t, src.Reader.Get(context.Background(), client.ObjectKey{Name: name}, &s))
		got, msg := st.space(context.Background(), &s)
		assert.Equal(t, reason, got, "%s: %s", name, msg)
	}
	var p wardenv1.StoragePolicy
	require.NoError(t, src.Reader.Get(context.Background(), client.ObjectKey{Name: "bad"}, &p))
	got, _ := st.storagePolicy(context.Background(), &p)
	assert.Equal(t, wardenv1.ReasonInvalid, got)
}

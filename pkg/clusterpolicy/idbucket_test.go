package clusterpolicy

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/warden-dev/warden/pkg/policy"
)

// sameBucket is a name other than id and not, that the id index files with id.
func sameBucket(t *testing.T, id string, not ...string) string {
	for i := range 1 << 20 {
		if n := fmt.Sprintf("ds-%d", i); idBucket(n) == idBucket(id) && n != id && !slices.Contains(not, n) {
			return n
		}
	}
	t.Fatal("no name shares the bucket")
	return ""
}

// Datasets whose names share a bucket never stand in for one another: an older one of another
// name neither holds nor shadows the id, and each id has its own holder, readers and status.
func TestIDBucketsKeepIDsApart(t *testing.T) {
	other := sameBucket(t, "sales")
	require.Equal(t, idBucket("sales"), idBucket(other))
	src := newSource(t, false, ns("team-a", "prod/team-a"), ns("team-b", "prod/team-b"),
		dataset("team-b", other, 100, "other", "user:mallory"), // older, same bucket
		dataset("team-a", "sales", 1, "sales", "user:ann"),
		dataset("team-b", "sales", 0, "younger", "user:mallory"))
	v := src.View()
	for _, tc := range []struct {
		id, snapshot, reader, stranger string
	}{
		{"sales", "prod/team-a/sales", "ann", "mallory"},
		{other, "prod/team-b/other", "mallory", "ann"},
	} {
		d, ok := v.Dataset(tc.id)
		require.True(t, ok, tc.id)
		assert.Equal(t, tc.id, d.ID)
		assert.Equal(t, tc.snapshot, d.Snapshot, tc.id)
		assert.True(t, v.CanRead(tc.id, policy.Principal{User: tc.reader}), tc.id)
		assert.False(t, v.CanRead(tc.id, policy.Principal{User: tc.stranger}), tc.id)
	}
	_, ok := v.Dataset(sameBucket(t, "sales", other))
	assert.False(t, ok, "an id nobody holds, whatever its bucket holds")
	assert.Len(t, src.datasetsNamed("sales"), 2)

	st := &Statuses{Source: src}
	got := st.sameID(context.Background(), dataset("team-a", "sales", 1, "sales"))
	assert.ElementsMatch(t, []reconcile.Request{
		{NamespacedName: types.NamespacedName{Namespace: "team-a", Name: "sales"}},
		{NamespacedName: types.NamespacedName{Namespace: "team-b", Name: "sales"}},
	}, got, "a Dataset's status depends on those of its id, not of its bucket")
}

func TestIDBucketSpread(t *testing.T) {
	seen := map[string]int{}
	for i := range 50000 {
		seen[idBucket(fmt.Sprintf("ds-%06d", i))]++
	}
	assert.Len(t, seen, idBuckets, "every bucket in use")
	for b, n := range seen {
		assert.Less(t, n, 50, "bucket %s", b) // ~12 each
	}
}

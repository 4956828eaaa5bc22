package clusterpolicy

import (
	"testing"

	"github.com/stretchr/testify/assert"
	toolscache "k8s.io/client-go/tools/cache"

	wardenv1 "github.com/warden-dev/warden/pkg/apis/warden/v1alpha1"
)

func names(ds []*wardenv1.Dataset) []string {
	out := []string{}
	for _, d := range ds {
		out = append(out, d.Namespace+"/"+d.Name)
	}
	return out
}

// The reader index follows the informer's events: every valid Dataset under each of its
// readers, never an invalid one, and nothing of a Dataset once deleted.
func TestReaderIndex(t *testing.T) {
	a := dataset("team-a", "sales", 1, "s", "user:ann", "serviceAccount:apps/svc")
	b := dataset("team-b", "sales", 1, "s", "user:ann")
	aLess := dataset("team-a", "sales", 1, "s", "serviceAccount:apps/svc", "user:bob")
	invalid := dataset("team-a", "bad", 1, "../x", "user:ann")
	for _, tc := range []struct {
		name   string
		events func(h toolscache.ResourceEventHandler)
		want   map[string][]string
	}{
		{"added", func(h toolscache.ResourceEventHandler) { h.OnAdd(a, true); h.OnAdd(b, true) },
			map[string][]string{"user:ann": {"team-a/sales", "team-b/sales"}, "serviceAccount:apps/svc": {"team-a/sales"}, "user:bob": {}}},
		{"invalid never indexed", func(h toolscache.ResourceEventHandler) { h.OnAdd(invalid, true) },
			map[string][]string{"user:ann": {}}},
		{"a reader removed and one added", func(h toolscache.ResourceEventHandler) { h.OnAdd(a, true); h.OnAdd(b, true); h.OnUpdate(a, aLess) },
			map[string][]string{"user:ann": {"team-b/sales"}, "user:bob": {"team-a/sales"}, "serviceAccount:apps/svc": {"team-a/sales"}}},
		{"made invalid", func(h toolscache.ResourceEventHandler) { h.OnAdd(a, true); h.OnUpdate(a, invalid) },
			map[string][]string{"user:ann": {}, "serviceAccount:apps/svc": {}}},
		{"deleted", func(h toolscache.ResourceEventHandler) { h.OnAdd(a, true); h.OnAdd(b, true); h.OnDelete(a) },
			map[string][]string{"user:ann": {"team-b/sales"}, "serviceAccount:apps/svc": {}}},
		{"deleted, state unknown", func(h toolscache.ResourceEventHandler) {
			h.OnAdd(a, true)
			h.OnDelete(toolscache.DeletedFinalStateUnknown{Key: "team-a/sales", Obj: a})
		}, map[string][]string{"user:ann": {}}},
		{"resync", func(h toolscache.ResourceEventHandler) { h.OnAdd(a, true); h.OnUpdate(a, a) },
			map[string][]string{"user:ann": {"team-a/sales"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var x readerIndex
			tc.events(x.handler())
			for reader, want := range tc.want {
				assert.Equal(t, want, names(x.lookup(reader)), reader)
			}
		})
	}
}

// A lookup's list stays as it was while the index changes.
func TestReaderIndexListsAreStable(t *testing.T) {
	var x readerIndex
	a, b := dataset("team-a", "a", 1, "s", "user:ann"), dataset("team-a", "b", 1, "s", "user:ann")
	x.update(nil, a)
	x.update(nil, b)
	got := x.lookup("user:ann")
	x.update(a, nil)
	x.update(nil, dataset("team-a", "c", 1, "s", "user:ann"))
	assert.Equal(t, []string{"team-a/a", "team-a/b"}, names(got))
	assert.Equal(t, []string{"team-a/b", "team-a/c"}, names(x.lookup("user:ann")))
}

package clusterpolicy

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wardenv1 "github.com/warden-dev/warden/pkg/apis/warden/v1alpha1"
)

// The informers' index keys are controller-runtime's cluster-wide keys alone, namespaced object
// or not, and computing them leaves the object as it was (a Group's users are its own slice).
func TestClusterKeys(t *testing.T) {
	users := func(o client.Object) []string { return o.(*wardenv1.Group).Spec.Users }
	name := func(o client.Object) []string { return []string{o.GetName()} }
	none := func(client.Object) []string { return nil }
	for _, tc := range []struct {
		name    string
		obj     client.Object
		extract client.IndexerFunc
		want    []string
	}{
		{"namespaced", &wardenv1.Dataset{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "sales"}}, name, []string{"__all_namespaces/sales"}},
		{"cluster-scoped", &wardenv1.Group{ObjectMeta: metav1.ObjectMeta{Name: "g"}, Spec: wardenv1.GroupSpec{Users: []string{"ann", "bob"}}}, users,
			[]string{"__all_namespaces/ann", "__all_namespaces/bob"}},
		{"no values", &wardenv1.Group{ObjectMeta: metav1.ObjectMeta{Name: "g"}}, none, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.obj.DeepCopyObject()
			got, err := clusterKeys(tc.extract)(tc.obj)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, before, tc.obj)
		})
	}
	_, err := clusterKeys(name)("not an object")
	assert.Error(t, err)
}

package clusterpolicy

import (
	"runtime"
	"strings"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/randfill"

	wardenv1 "github.com/warden-dev/warden/pkg/apis/warden/v1alpha1"
)

func kinds() []client.Object {
	return []client.Object{&wardenv1.Owner{}, &wardenv1.Dataset{}, &wardenv1.Group{}, &wardenv1.Org{}, &wardenv1.Space{}, &wardenv1.StoragePolicy{}}
}

// Every field of every kind, filled at random, comes out of the transform as it went in, but
// for the three it drops: what the view and the status writer read is all there, unchanged.
func TestTransformKeepsAllButDroppedMetadata(t *testing.T) {
	for _, kind := range kinds() {
		t.Run(kindName(kind), func(t *testing.T) {
			for seed := range int64(20) {
				in := kind.DeepCopyObject().(client.Object)
				randfill.NewWithSeed(seed).NilChance(0).NumElements(1, 3).Fill(in)
				require.NotEmpty(t, in.GetAnnotations())
				want := in.DeepCopyObject().(client.Object)
				want.SetManagedFields(nil)
				want.SetAnnotations(nil)
				want.SetLabels(nil)

				got, err := Transform(in.DeepCopyObject())
				require.NoError(t, err)
				assert.Equal(t, want, got)
				again, err := Transform(got)
				require.NoError(t, err)
				assert.Equal(t, want, again, "idempotent")
			}
		})
	}
}

func kindName(o client.Object) string {
	switch o.(type) {
	case *wardenv1.Owner:
		return "Owner"
	case *wardenv1.Dataset:
		return "Dataset"
	case *wardenv1.Group:
		return "Group"
	case *wardenv1.Org:
		return "Org"
	case *wardenv1.Space:
		return "Space"
	case *wardenv1.StoragePolicy:
		return "StoragePolicy"
	}
	return "other"
}

// Strings that repeat across objects are stored once, whenever the objects come.
func TestTransformInterns(t *testing.T) {
	mk := func() *wardenv1.Dataset {
		// Built at run time, so that each object has its own copy, as decoding gives it.
		reader := wardenv1.Member(strings.Clone("user:ann"))
		ns := strings.Clone("team-a")
		return &wardenv1.Dataset{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns},
			Spec:       wardenv1.DatasetSpec{Readers: []wardenv1.Member{reader}, Environments: []wardenv1.Environment{wardenv1.Environment(strings.Clone("prod"))}},
			Status:     wardenv1.Status{Conditions: []metav1.Condition{{Type: strings.Clone("Accepted"), Message: strings.Clone("in force")}}},
		}
	}
	a, b := mk(), mk()
	require.NotSame(t, unsafe.StringData(string(a.Spec.Readers[0])), unsafe.StringData(string(b.Spec.Readers[0])))
	_, _ = Transform(a)
	runtime.GC() // objects keep their strings, and the table keeps sharing them after a collection
	_, _ = Transform(b)
	for name, pair := range map[string][2]string{
		"reader":      {string(a.Spec.Readers[0]), string(b.Spec.Readers[0])},
		"environment": {string(a.Spec.Environments[0]), string(b.Spec.Environments[0])},
		"namespace":   {a.Namespace, b.Namespace},
		"condition":   {a.Status.Conditions[0].Type, b.Status.Conditions[0].Type},
		"message":     {a.Status.Conditions[0].Message, b.Status.Conditions[0].Message},
	} {
		assert.Same(t, unsafe.StringData(pair[0]), unsafe.StringData(pair[1]), name)
	}
}

// Objects of other kinds (and tombstones) pass through untouched.
func TestTransformOtherKinds(t *testing.T) {
	n := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "a", Annotations: map[string]string{"k": "v"}}}
	got, err := Transform(n)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"k": "v"}, got.(*corev1.Namespace).Annotations)
	tomb := "not an object"
	got, err = Transform(tomb)
	require.NoError(t, err)
	assert.Equal(t, tomb, got)
}

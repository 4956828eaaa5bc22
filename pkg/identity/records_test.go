package identity

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/warden-dev/warden/pkg/contract"
)

func newRecords() *Records { return &Records{Kube: newKube(), Namespace: recordsNS} }

func TestRecordsRoundTrip(t *testing.T) {
	ctx := context.Background()
	r := newRecords()

	_, had, err := r.Get(ctx, ownerA)
	require.NoError(t, err)
	assert.False(t, had, "no record is not an error")
	_, had, err = r.LastOrg(ctx, ownerA)
	require.NoError(t, err)
	assert.False(t, had)

	rec := Record{Org: "org1", GSA: gsa, Member: memberOf(ownerA), Written: time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC), Previous: gsa2}
	require.NoError(t, r.Save(ctx, ownerA, &rec, "org1"))
	got, had, err := r.Get(ctx, ownerA)
	require.NoError(t, err)
	assert.True(t, had)
	assert.Equal(t, rec, got)

	cm, err := r.Kube.CoreV1().ConfigMaps(recordsNS).Get(ctx, "warden-identity.apps.svc-a", metav1.GetOptions{})
	require.NoError(t, err, "one ConfigMap per owner, named after it")
	assert.Equal(t, "true", cm.Labels[contract.LabelIdentityRecord])
	assert.Equal(t, "warden", cm.Labels["app.kubernetes.io/part-of"])
	assert.Equal(t, ownerA, cm.Data["owner"])

	// A later save without an org keeps the last one; removing the record keeps it too.
	rec.Previous = ""
	require.NoError(t, r.Save(ctx, ownerA, &rec, ""))
	require.NoError(t, r.Save(ctx, ownerA, nil, ""))
	_, had, err = r.Get(ctx, ownerA)
	require.NoError(t, err)
	assert.False(t, had)
	last, had, err := r.LastOrg(ctx, ownerA)
	require.NoError(t, err)
	assert.True(t, had)
	assert.Equal(t, "org1", last)
}

func TestRecordsOwnersListsOnlyBound(t *testing.T) {
	ctx := context.Background()
	r := newRecords()
	rec := &Record{Org: "org1", GSA: gsa}
	require.NoError(t, r.Save(ctx, ownerA, rec, "org1"))
	require.NoError(t, r.Save(ctx, ownerB, rec, "org1"))
	require.NoError(t, r.Save(ctx, ownerB, nil, "")) // reset: only the last org is left
	_, err := r.Kube.CoreV1().ConfigMaps(recordsNS).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "unrelated", Namespace: recordsNS},
		Data:       map[string]string{"owner": "apps/x", "binding": "{}"},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	owners, err := r.Owners(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{ownerA}, owners, "unlabelled ConfigMaps and reset owners are not listed")
}

func TestRecordNames(t *testing.T) {
	r := &Records{}
	assert.Equal(t, "warden-identity.apps.svc-a", r.name(ownerA))
	assert.Equal(t, "custom.apps.svc-a", (&Records{Prefix: "custom"}).name(ownerA))
	long := strings.Repeat("n", 63) + "/" + strings.Repeat("s", 253)
	n := r.name(long)
	assert.LessOrEqual(t, len(n), 253, "a name Kubernetes accepts")
	assert.True(t, strings.HasPrefix(n, "warden-identity."))
	assert.Equal(t, n, r.name(long), "stable")
	assert.NotEqual(t, n, r.name(strings.Repeat("n", 63)+"/"+strings.Repeat("t", 253)))
}

func TestRecordUnreadable(t *testing.T) {
	ctx := context.Background()
	r := newRecords()
	_, err := r.Kube.CoreV1().ConfigMaps(recordsNS).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: r.name(ownerA), Namespace: recordsNS},
		Data:       map[string]string{"owner": ownerA, "binding": "{not json"},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, _, err = r.Get(ctx, ownerA)
	assert.ErrorContains(t, err, "unreadable")
}

func TestRecordsAPIFailures(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		verb string
		call func(r *Records) error
	}{
		{"get", func(r *Records) error { _, _, err := r.Get(ctx, ownerA); return err }},
		{"get", func(r *Records) error { _, _, err := r.LastOrg(ctx, ownerA); return err }},
		{"get", func(r *Records) error { return r.Save(ctx, ownerA, &Record{}, "") }},
		{"create", func(r *Records) error { return r.Save(ctx, ownerA, &Record{}, "") }},
		{"list", func(r *Records) error { _, err := r.Owners(ctx); return err }},
	} {
		r := newRecords()
		failKube(r.Kube.(kubeFake), tc.verb, "configmaps")
		assert.ErrorIs(t, tc.call(r), ErrClusterUnavailable, tc.verb)
	}
}

// Another replica writing the same owner's record between our read and our write is a conflict
// that Save retries, keeping both writes. The other replica writes straight into the fake's
// store: the clientset cannot be called from inside one of its reactors.
func TestRecordsSaveRetriesConflicts(t *testing.T) {
	ctx := context.Background()
	gvr := corev1.SchemeGroupVersion.WithResource("configmaps")
	otherReplicaWrites := func(t *testing.T, kube kubeFake, name string) {
		obj, err := kube.Tracker().Get(gvr, recordsNS, name)
		if apierrors.IsNotFound(err) {
			require.NoError(t, kube.Tracker().Create(gvr, &corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: recordsNS, ResourceVersion: "1",
					Labels: map[string]string{contract.LabelIdentityRecord: "true"}},
				Data: map[string]string{"owner": ownerA, "last-org": "org2"},
			}, recordsNS))
			return
		}
		require.NoError(t, err)
		cm := obj.(*corev1.ConfigMap).DeepCopy()
		cm.Data["last-org"] = "org2"
		cm.ResourceVersion += "-other"
		require.NoError(t, kube.Tracker().Update(gvr, cm, recordsNS))
	}
	for _, tc := range []struct {
		verb     string
		existing bool // the record exists before our Save
	}{
		{"update", true},
		{"create", false},
	} {
		t.Run(tc.verb, func(t *testing.T) {
			r := newRecords()
			if tc.existing {
				require.NoError(t, r.Save(ctx, ownerA, &Record{Org: "org1", GSA: gsa}, "org1"))
			}
			kube := r.Kube.(kubeFake)
			var raced atomic.Bool
			kube.PrependReactor(tc.verb, "configmaps", func(a k8stesting.Action) (bool, runtime.Object, error) {
				if raced.CompareAndSwap(false, true) {
					otherReplicaWrites(t, kube, r.name(ownerA))
				}
				return false, nil, nil
			})
			require.NoError(t, r.Save(ctx, ownerA, &Record{Org: "org3", GSA: gsa3}, ""))
			require.True(t, raced.Load())
			rec, had, err := r.Get(ctx, ownerA)
			require.NoError(t, err)
			assert.True(t, had)
			assert.Equal(t, "org3", rec.Org, "our write lands on top of the other one")
			last, _, err := r.LastOrg(ctx, ownerA)
			require.NoError(t, err)
			assert.Equal(t, "org2", last, "the other replica's write is kept")
		})
	}
}

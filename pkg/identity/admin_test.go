package identity

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warden-dev/warden/pkg/policy"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crfake "sigs.k8s.io/controller-runtime/pkg/client/fake"

	wardenv1 "github.com/warden-dev/warden/pkg/apis/warden/v1alpha1"
)

const adminPolicy = "# managed by the platform team\n" + testPolicy

func newOrgAdmin(t *testing.T) *OrgAdmin {
	t.Helper()
	kube := newKube(&corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: recordsNS, Name: "warden-policy", ResourceVersion: "1"},
		Data:       map[string]string{"policy.yaml": adminPolicy},
	})
	return &OrgAdmin{Kube: kube, Namespace: recordsNS, ConfigMap: "warden-policy"}
}

func (a *OrgAdmin) doc(t *testing.T) string {
	t.Helper()
	cm, err := a.Kube.CoreV1().ConfigMaps(recordsNS).Get(context.Background(), "warden-policy", metav1.GetOptions{})
	require.NoError(t, err)
	return cm.Data["policy.yaml"]
}

func TestSetOrgAccount(t *testing.T) {
	ctx := context.Background()
	const newGSA = "aes9-svc@my-project.iam.gserviceaccount.com"
	t.Run("edits the ConfigMap in place", func(t *testing.T) {
		a := newOrgAdmin(t)
		previous, err := a.SetOrgAccount(ctx, "org2", newGSA)
		require.NoError(t, err)
		assert.Equal(t, gsa2, previous)
		doc := a.doc(t)
		assert.Contains(t, doc, "# managed by the platform team", "comments survive")
		p := mustPolicy(t, doc)
		o, _ := p.IsOrgMember("org2", policy.Principal{ServiceAccount: ownerA})
		assert.Equal(t, newGSA, o.GCPServiceAccount)
		o, _ = p.IsOrgMember("org1", policy.Principal{ServiceAccount: ownerA})
		assert.Equal(t, gsa, o.GCPServiceAccount, "other orgs untouched")
	})
	for _, tc := range []struct {
		name, org, gsa string
		want           error
	}{
		{"unknown org", "org9", newGSA, ErrUnknownOrg},
		{"an account the policy refuses", "org2", "not-an-email", ErrBadEdit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newOrgAdmin(t)
			previous, err := a.SetOrgAccount(ctx, tc.org, tc.gsa)
			assert.ErrorIs(t, err, tc.want)
			assert.Empty(t, previous)
			assert.Equal(t, adminPolicy, a.doc(t), "nothing written")
		})
	}
	t.Run("a document only the edit makes valid: no previous account to name", func(t *testing.T) {
		a := newOrgAdmin(t)
		cm, err := a.Kube.CoreV1().ConfigMaps(recordsNS).Get(ctx, "warden-policy", metav1.GetOptions{})
		require.NoError(t, err)
		cm.Data["policy.yaml"] = strings.Replace(adminPolicy, gsa2, "not-an-email", 1)
		_, err = a.Kube.CoreV1().ConfigMaps(recordsNS).Update(ctx, cm, metav1.UpdateOptions{})
		require.NoError(t, err)
		previous, err := a.SetOrgAccount(ctx, "org2", newGSA)
		require.NoError(t, err)
		assert.Empty(t, previous)
		assert.Contains(t, a.doc(t), newGSA)
	})
	t.Run("no ConfigMap", func(t *testing.T) {
		a := newOrgAdmin(t)
		a.ConfigMap = "missing"
		_, err := a.SetOrgAccount(ctx, "org2", newGSA)
		assert.ErrorContains(t, err, "not found")
	})
	t.Run("another writer's change is kept", func(t *testing.T) {
		a := newOrgAdmin(t)
		kube := a.Kube.(kubeFake)
		gvr := corev1.SchemeGroupVersion.WithResource("configmaps")
		var raced atomic.Bool
		kube.PrependReactor("update", "configmaps", func(k8stesting.Action) (bool, runtime.Object, error) {
			if raced.CompareAndSwap(false, true) {
				obj, err := kube.Tracker().Get(gvr, recordsNS, "warden-policy")
				require.NoError(t, err)
				cm := obj.(*corev1.ConfigMap).DeepCopy()
				cm.Data["policy.yaml"] = "# edited by someone else\n" + cm.Data["policy.yaml"]
				cm.ResourceVersion = "other"
				require.NoError(t, kube.Tracker().Update(gvr, cm, recordsNS))
			}
			return false, nil, nil
		})
		previous, err := a.SetOrgAccount(ctx, "org2", newGSA)
		require.NoError(t, err)
		assert.Equal(t, gsa2, previous)
		doc := a.doc(t)
		assert.Contains(t, doc, "# edited by someone else")
		assert.Contains(t, doc, newGSA)
	})
}

// An org defined as an Org object is edited there; the file's orgs stay the file's.
func TestSetOrgAccountOnObjects(t *testing.T) {
	ctx := context.Background()
	scheme := runtime.NewScheme()
	require.NoError(t, wardenv1.AddToScheme(scheme))
	objects := crfake.NewClientBuilder().WithScheme(scheme).WithObjects(&wardenv1.Org{
		ObjectMeta: metav1.ObjectMeta{Name: "org-obj"},
		Spec:       wardenv1.OrgSpec{GCPServiceAccount: "old@my-project.iam.gserviceaccount.com"},
	}).Build()
	a := newOrgAdmin(t)
	a.Objects = objects
	const gsa = "new@my-project.iam.gserviceaccount.com"
	previous, err := a.SetOrgAccount(ctx, "org-obj", gsa)
	require.NoError(t, err)
	assert.Equal(t, "old@my-project.iam.gserviceaccount.com", previous)
	var o wardenv1.Org
	require.NoError(t, objects.Get(ctx, client.ObjectKey{Name: "org-obj"}, &o))
	assert.Equal(t, gsa, o.Spec.GCPServiceAccount)

	previous, err = a.SetOrgAccount(ctx, "org2", gsa)
	require.NoError(t, err, "an org of the file")
	assert.Equal(t, gsa2, previous)
	assert.Contains(t, a.doc(t), gsa)

	_, err = a.SetOrgAccount(ctx, "nowhere", gsa)
	assert.ErrorIs(t, err, ErrUnknownOrg)
	_, err = a.SetOrgAccount(ctx, "org-obj", "not-an-email")
	assert.ErrorIs(t, err, ErrBadEdit)

	a.ConfigMap = "" // objects only
	previous, err = a.SetOrgAccount(ctx, "org-obj", "third@my-project.iam.gserviceaccount.com")
	require.NoError(t, err)
	assert.Equal(t, gsa, previous)
}

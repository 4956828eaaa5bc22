package e2e

// The policy as objects on the real API server: the CRDs of manifests/base, the delegation roles
// of manifests/base/policy-roles.yaml, the webhook's status conditions, and the broker answering
// from the objects.

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	webhookapp "github.com/warden-dev/warden/cmd/webhook/app"
	"github.com/warden-dev/warden/internal/testing/testenv"
	wardenv1 "github.com/warden-dev/warden/pkg/apis/warden/v1alpha1"
	"github.com/warden-dev/warden/pkg/contract"
	"github.com/warden-dev/warden/pkg/grants"
	"github.com/warden-dev/warden/pkg/policy"
	"github.com/warden-dev/warden/pkg/policyconvert"
)

// objectsClient is a client acting as user (with groups); "" is the suite's admin.
func objectsClient(t testing.TB, user string, groups ...string) client.Client {
	t.Helper()
	scheme := runtime.NewScheme()
	require.NoError(t, clientgoscheme.AddToScheme(scheme))
	require.NoError(t, wardenv1.AddToScheme(scheme))
	cfg := rest.CopyConfig(env.Config)
	if user != "" {
		cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: append(groups, "system:authenticated")}
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	require.NoError(t, err)
	return c
}

func ensureNamespaceWithRoot(t testing.TB, name, root string) {
	t.Helper()
	ensureNamespace(t, name, false)
	n, err := kube.CoreV1().Namespaces().Get(ctx(t), name, metav1.GetOptions{})
	require.NoError(t, err)
	if root == "" {
		return
	}
	if n.Annotations == nil {
		n.Annotations = map[string]string{}
	}
	n.Annotations[contract.AnnotationSnapshotRoot] = root
	_, err = kube.CoreV1().Namespaces().Update(ctx(t), n, metav1.UpdateOptions{})
	require.NoError(t, err)
}

// accepted waits for the webhook's verdict on an object and returns its condition.
func accepted(t *testing.T, c client.Client, obj client.Object) metav1.Condition {
	t.Helper()
	return acceptedAs(t, c, obj, "")
}

// acceptedAs waits until the webhook's verdict on an object has the given reason ("" for any)
// and returns its condition. A verdict that depends on another object (a Space on its Org) may
// be written once before that object reaches the webhook's cache, then again.
func acceptedAs(t *testing.T, c client.Client, obj client.Object, reason string) metav1.Condition {
	t.Helper()
	var cond *metav1.Condition
	require.Eventually(t, func() bool {
		if err := c.Get(ctx(t), client.ObjectKeyFromObject(obj), obj); err != nil {
			return false
		}
		var conds []metav1.Condition
		switch o := obj.(type) {
		case *wardenv1.Dataset:
			conds = o.Status.Conditions
		case *wardenv1.Owner:
			conds = o.Status.Conditions
		case *wardenv1.Org:
			conds = o.Status.Conditions
		case *wardenv1.Group:
			conds = o.Status.Conditions
		case *wardenv1.Space:
			conds = o.Status.Conditions
		case *wardenv1.StoragePolicy:
			conds = o.Status.Conditions
		}
		cond = meta.FindStatusCondition(conds, wardenv1.ConditionAccepted)
		return cond != nil && cond.ObservedGeneration == obj.GetGeneration() && (reason == "" || cond.Reason == reason)
	}, time.Minute, 100*time.Millisecond, "no Accepted condition %s on %s (last: %+v)", reason, obj.GetName(), cond)
	return *cond
}

func roleBinding(t testing.TB, ns, name, role, user string) {
	t.Helper()
	_, err := kube.RbacV1().RoleBindings(ns).Create(ctx(t), &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role},
		Subjects:   []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: user}},
	}, metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		require.NoError(t, err)
	}
}

// editDataset changes a Dataset the way kubectl edit does: read, change, write, again on a
// conflict (the webhook writes the status meanwhile).
func editDataset(t testing.TB, c client.Client, d *wardenv1.Dataset, change func(*wardenv1.Dataset)) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var cur wardenv1.Dataset
		if err := objectsClient(t, "").Get(ctx(t), client.ObjectKeyFromObject(d), &cur); err != nil {
			return err
		}
		change(&cur)
		return c.Update(ctx(t), &cur)
	})
}

func newDataset(ns, id, snapshot string, readers ...wardenv1.Member) *wardenv1.Dataset {
	return &wardenv1.Dataset{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: id}, Spec: wardenv1.DatasetSpec{Snapshot: wardenv1.SnapshotDir(snapshot), Readers: readers}}
}

// Who may change what is Kubernetes RBAC, with the roles Warden ships.
func TestPolicyObjectsRBAC(t *testing.T) {
	setup(t)
	ensureNamespaceWithRoot(t, "team-a", "prod/team-a")
	ensureNamespaceWithRoot(t, "team-b", "prod/team-b")
	roleBinding(t, "team-a", "dana-datasets", "warden-dataset-owner", "dana")
	admin := objectsClient(t, "")
	dana := objectsClient(t, "dana")

	// A dataset owner manages the datasets of their namespace, readers included.
	ds := newDataset("team-a", "team-a-sales", "sales", "user:ann")
	require.NoError(t, dana.Create(ctx(t), ds))
	require.NoError(t, editDataset(t, dana, ds, func(d *wardenv1.Dataset) { d.Spec.Readers = append(d.Spec.Readers, "user:bob") }),
		"a dataset owner changes their dataset's readers")
	// ... and nothing else.
	err := dana.Create(ctx(t), newDataset("team-b", "team-b-steal", "x", "user:dana"))
	assert.True(t, apierrors.IsForbidden(err), "datasets of another namespace: %v", err)
	other := newDataset("team-b", "team-b-sales", "sales", "user:ann")
	require.NoError(t, admin.Create(ctx(t), other))
	err = editDataset(t, dana, other, func(d *wardenv1.Dataset) { d.Spec.Readers = append(d.Spec.Readers, "user:dana") })
	assert.True(t, apierrors.IsForbidden(err), "another namespace's readers: %v", err)
	assert.True(t, apierrors.IsForbidden(dana.Create(ctx(t), &wardenv1.Owner{ObjectMeta: metav1.ObjectMeta{Name: "team-a.dana"},
		Spec: wardenv1.OwnerSpec{ServiceAccount: "team-a/dana", Environment: "prod"}})), "a dataset owner cannot make an owner")
	n, err := kube.CoreV1().Namespaces().Get(ctx(t), "team-a", metav1.GetOptions{})
	require.NoError(t, err)
	n.Annotations[contract.AnnotationSnapshotRoot] = "."
	_, err = kubeAs(t, "dana").CoreV1().Namespaces().Update(ctx(t), n, metav1.UpdateOptions{})
	assert.True(t, apierrors.IsForbidden(err), "a dataset owner cannot move their snapshot root: %v", err)

	// A tenant who may create pods (edit in their namespace) cannot make themselves an owner,
	// an org member or a group member.
	roleBinding(t, "apps", "tess-edit", "edit", "tess")
	tess := objectsClient(t, "tess")
	assert.True(t, apierrors.IsForbidden(tess.Create(ctx(t), &wardenv1.Owner{ObjectMeta: metav1.ObjectMeta{Name: "apps.intruder"},
		Spec: wardenv1.OwnerSpec{ServiceAccount: "apps/intruder", Environment: "prod"}})))
	assert.True(t, apierrors.IsForbidden(tess.Create(ctx(t), &wardenv1.Group{ObjectMeta: metav1.ObjectMeta{Name: "tess-friends"}, Spec: wardenv1.GroupSpec{Users: []string{"tess"}}})))
	assert.True(t, apierrors.IsForbidden(tess.Create(ctx(t), &wardenv1.Org{ObjectMeta: metav1.ObjectMeta{Name: "tess-org"},
		Spec: wardenv1.OrgSpec{GCPServiceAccount: "x@my-project.iam.gserviceaccount.com", Members: []wardenv1.Member{"serviceAccount:apps/intruder"}}})))
	assert.True(t, apierrors.IsForbidden(tess.Create(ctx(t), newDataset("apps", "tess-data", "x", "user:tess"))))

	// warden-admin may do all of it.
	_, err = kube.RbacV1().ClusterRoleBindings().Create(ctx(t), &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "e2e-warden-admin"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "warden-admin"},
		Subjects:   []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: "platform"}},
	}, metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		require.NoError(t, err)
	}
	platform := objectsClient(t, "platform")
	o := &wardenv1.Owner{ObjectMeta: metav1.ObjectMeta{Name: "team-a.svc-analytics"}, Spec: wardenv1.OwnerSpec{ServiceAccount: "team-a/svc-analytics", Environment: "prod"}}
	require.NoError(t, platform.Create(ctx(t), o))
	assert.Equal(t, metav1.ConditionTrue, accepted(t, admin, o).Status)
}

func kubeAs(t testing.TB, user string) *kubernetes.Clientset {
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: []string{"system:authenticated"}}
	return kubernetes.NewForConfigOrDie(cfg)
}

// The schema and the status refuse what is wrong, and an object that is not accepted never
// grants: the webhook says why on the object.
func TestPolicyObjectsStatus(t *testing.T) {
	setup(t)
	ensureNamespaceWithRoot(t, "team-s", "prod/team-s")
	ensureNamespaceWithRoot(t, "team-s2", "prod/team-s2")
	ensureNamespaceWithRoot(t, "rootless", "")
	c := objectsClient(t, "")

	for name, obj := range map[string]client.Object{
		"owner not named after its account": &wardenv1.Owner{ObjectMeta: metav1.ObjectMeta{Name: "apps.someone"}, Spec: wardenv1.OwnerSpec{ServiceAccount: "apps/else", Environment: "prod"}},
		"unknown environment":               &wardenv1.Owner{ObjectMeta: metav1.ObjectMeta{Name: "apps.x"}, Spec: wardenv1.OwnerSpec{ServiceAccount: "apps/x", Environment: "staging"}},
		"snapshot escaping its root":        newDataset("team-s", "escape", "../../team-b/secret", "user:ann"),
		"absolute snapshot":                 newDataset("team-s", "absolute", "/etc", "user:ann"),
		"malformed reader":                  newDataset("team-s", "bad-reader", "ok", "everyone"),
		"org with a bad account":            &wardenv1.Org{ObjectMeta: metav1.ObjectMeta{Name: "bad-org"}, Spec: wardenv1.OrgSpec{GCPServiceAccount: "not-an-email"}},
	} {
		err := c.Create(ctx(t), obj)
		assert.True(t, apierrors.IsInvalid(err), "%s: %v", name, err)
	}

	for _, tc := range []struct {
		name   string
		obj    client.Object
		reason string
	}{
		{"the file's dataset id", newDataset("team-s", "prod-dataset-1", "hijack", "user:mallory"), wardenv1.ReasonConflict},
		{"a namespace without snapshot root", newDataset("rootless", "rootless-data", "x", "user:ann"), wardenv1.ReasonNoSnapshotRoot},
		{"the file's owner", &wardenv1.Owner{ObjectMeta: metav1.ObjectMeta{Name: "apps.svc-prod-app-1"}, Spec: wardenv1.OwnerSpec{ServiceAccount: "apps/svc-prod-app-1", Environment: "dev"}}, wardenv1.ReasonConflict},
		{"the file's org", &wardenv1.Org{ObjectMeta: metav1.ObjectMeta{Name: "org1"}, Spec: wardenv1.OrgSpec{GCPServiceAccount: "hijack@my-project.iam.gserviceaccount.com"}}, wardenv1.ReasonConflict},
		{"a fine dataset", newDataset("team-s", "team-s-data", "data", "user:ann"), wardenv1.ReasonAccepted},
	} {
		require.NoError(t, c.Create(ctx(t), tc.obj), tc.name)
		obj := tc.obj
		t.Cleanup(func() { _ = c.Delete(context.Background(), obj) })
		acceptedAs(t, c, tc.obj, tc.reason) // the namespace's root may reach the cache after the object
	}
	// The same id in a second namespace: the first one holds it; once it goes, the second.
	dup := newDataset("team-s2", "team-s-data", "data", "user:mallory")
	require.NoError(t, c.Create(ctx(t), dup))
	t.Cleanup(func() { _ = c.Delete(context.Background(), dup) })
	acceptedAs(t, c, dup, wardenv1.ReasonConflict)
	d, ok := server.PolicyView().Dataset("team-s-data")
	require.True(t, ok)
	assert.Equal(t, "prod/team-s/data", d.Snapshot, "the first namespace's dataset, under its root")
	require.NoError(t, c.Delete(ctx(t), newDataset("team-s", "team-s-data", "", "")))
	require.Eventually(t, func() bool {
		d, ok := server.PolicyView().Dataset("team-s-data")
		return ok && d.Snapshot == "prod/team-s2/data" && accepted(t, c, dup).Reason == wardenv1.ReasonAccepted
	}, time.Minute, 100*time.Millisecond)

	// The file still wins for its own dataset.
	d, _ = server.PolicyView().Dataset("prod-dataset-1")
	assert.Equal(t, "prod/dataset-1/rw", d.Snapshot)
}

// Admission and the broker answer from the objects; a reader added reaches the broker's answer.
func TestPolicyObjectsReachAdmissionAndBroker(t *testing.T) {
	setup(t)
	ensureNamespaceWithRoot(t, "team-g", "prod/team-g")
	ensureServiceAccount(t, "apps", "svc-objects")
	c := objectsClient(t, "")

	// Not an owner yet: refused.
	_, err := createPod(t, "apps", newPod("objects-pod", "svc-objects"), true)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "is not a Warden owner")
	owner := &wardenv1.Owner{ObjectMeta: metav1.ObjectMeta{Name: "apps.svc-objects"}, Spec: wardenv1.OwnerSpec{ServiceAccount: "apps/svc-objects", Environment: "prod", User: "ops"}}
	require.NoError(t, c.Create(ctx(t), owner))
	require.Eventually(t, func() bool {
		_, err = createPod(t, "apps", newPod("objects-pod", "svc-objects"), true)
		return err == nil
	}, time.Minute, 100*time.Millisecond, "an Owner object admits its service account: %v", err)

	ds := newDataset("team-g", "team-g-sales", "sales", "serviceAccount:apps/svc-objects", "group:team-g-analysts")
	require.NoError(t, c.Create(ctx(t), ds))
	require.NoError(t, c.Create(ctx(t), &wardenv1.Group{ObjectMeta: metav1.ObjectMeta{Name: "team-g-analysts"}, Spec: wardenv1.GroupSpec{Users: []string{"bea"}}}))
	_, tok := podToken(t, "apps", "svc-objects", "objects", contract.TokenAudience)
	b := brokerClient(t, brokerURL, tok, caPool(t))
	require.Eventually(t, func() bool {
		d, err := b.Check(ctx(t), "apps/svc-objects", grants.Caller{User: "bea"}, "team-g-sales")
		return err == nil && d.Allowed() && d.Snapshot == "prod/team-g/sales"
	}, time.Minute, 100*time.Millisecond, "a group member reads the object dataset")
	d, err := b.Check(ctx(t), "apps/svc-objects", grants.Caller{User: "ann"}, "team-g-sales")
	require.NoError(t, err)
	assert.False(t, d.Allowed(), "not a reader yet")

	// The dataset owner adds a reader: the broker's answer follows.
	require.NoError(t, editDataset(t, c, ds, func(d *wardenv1.Dataset) { d.Spec.Readers = append(d.Spec.Readers, "user:ann") }))
	start := time.Now()
	require.Eventually(t, func() bool {
		d, err := b.Check(ctx(t), "apps/svc-objects", grants.Caller{User: "ann"}, "team-g-sales")
		return err == nil && d.Allowed()
	}, time.Minute, 20*time.Millisecond)
	t.Logf("reader added -> broker answers yes after %v", time.Since(start))
	l, err := b.List(ctx(t), "apps/svc-objects", grants.Caller{User: "ann"})
	require.NoError(t, err)
	assert.Equal(t, []grants.Dataset{{ID: "team-g-sales", Snapshot: "prod/team-g/sales"}}, l)

	// Removing the Owner takes admission away again.
	require.NoError(t, c.Delete(ctx(t), owner))
	require.Eventually(t, func() bool {
		_, err = createPod(t, "apps", newPod("objects-pod-2", "svc-objects"), true)
		return err != nil && strings.Contains(err.Error(), "is not a Warden owner")
	}, time.Minute, 100*time.Millisecond)
}

// `warden policy convert` on the seed scenario, applied through the API: a webhook that reads
// the objects alone (no file) answers every question as the file does.
func TestConvertedPolicyThroughTheAPI(t *testing.T) {
	setup(t)
	file, err := policy.Load(filepath.Join(testenv.RepoRoot(), "examples/policy.yaml"))
	require.NoError(t, err)
	objs, err := policyconvert.Objects(file, "converted-datasets")
	require.NoError(t, err)
	c := objectsClient(t, "")
	for _, o := range objs {
		co := o.(client.Object)
		if err := c.Create(ctx(t), co); err != nil && !apierrors.IsAlreadyExists(err) {
			require.NoError(t, err, "%T %s", o, co.GetName())
		}
	}
	replica := startReplica(t, env.Config, "a-warden-objects-only", "ghcr.io/warden-dev/warden-sidecar:objects", "", "e2e-objects-only",
		func(o *webhookapp.Options) { o.PolicyFile, o.GCPProject = "", file.GCP.Project })
	v := replica.PolicyView()
	require.Eventually(t, func() bool {
		_, ok := v.Dataset(file.Datasets[len(file.Datasets)-1].ID)
		return ok
	}, time.Minute, 50*time.Millisecond, "objects never reached the replica's cache")
	for _, o := range file.Owners {
		got, ok := v.Owner(o.ServiceAccount)
		assert.True(t, ok)
		assert.Equal(t, o, got)
		for _, d := range file.Datasets {
			assert.Equal(t, file.OwnerCanRead(d.ID, o.ServiceAccount), v.OwnerCanRead(d.ID, o.ServiceAccount), "%s reads %s", o.ServiceAccount, d.ID)
		}
		assert.Equal(t, file.ReadableBy(policy.Principal{ServiceAccount: o.ServiceAccount}), v.ReadableBy(policy.Principal{ServiceAccount: o.ServiceAccount}))
	}
	for _, d := range file.Datasets {
		got, ok := v.Dataset(d.ID)
		require.True(t, ok, d.ID)
		assert.Equal(t, d.Snapshot, got.Snapshot)
		for _, u := range []string{"user-ds-1", "user-ds-2", "user-ds-3", "integration-test", "stranger"} {
			who := policy.Principal{User: u}
			assert.Equal(t, file.CanRead(d.ID, who), v.CanRead(d.ID, who), "%s reads %s", u, d.ID)
		}
	}
	assert.Equal(t, file.GCP.Project, v.Project())
}

package clusterpolicy

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	wardenv1 "github.com/warden-dev/warden/pkg/apis/warden/v1alpha1"
	"github.com/warden-dev/warden/pkg/contract"
	"github.com/warden-dev/warden/pkg/policy"
)

const testFile = `
owners:
  - {serviceAccount: apps/file-owner, environment: prod}
datasets:
  - {id: file-ds, snapshot: file/ds, readers: [serviceAccount:apps/svc, group:file-group]}
groups:
  file-group: [fred]
  shadowed: [nobody]
orgs:
  - {name: org-file, gcpServiceAccount: f@p.iam.gserviceaccount.com, members: [serviceAccount:apps/svc]}
gcp:
  project: my-project
`

// fakeIndexer registers the view's indexes on a fake client builder.
type fakeIndexer struct{ b *fake.ClientBuilder }

func (f fakeIndexer) IndexField(_ context.Context, obj client.Object, field string, extract client.IndexerFunc) error {
	f.b.WithIndex(obj, field, extract)
	return nil
}

func ns(name, root string) *corev1.Namespace {
	n := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if root != "" {
		n.Annotations = map[string]string{contract.AnnotationSnapshotRoot: root}
	}
	return n
}

func owner(sa string, env wardenv1.Environment) *wardenv1.Owner {
	return &wardenv1.Owner{ObjectMeta: metav1.ObjectMeta{Name: replaceSlash(sa)}, Spec: wardenv1.OwnerSpec{ServiceAccount: sa, Environment: env}}
}

func replaceSlash(s string) string {
	for i := range s {
		if s[i] == '/' {
			return s[:i] + "." + s[i+1:]
		}
	}
	return s
}

func dataset(namespace, id string, age int, snapshot string, readers ...wardenv1.Member) *wardenv1.Dataset {
	return &wardenv1.Dataset{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: id, CreationTimestamp: metav1.NewTime(time.Unix(1_000_000-int64(age), 0))},
		Spec:       wardenv1.DatasetSpec{Snapshot: wardenv1.SnapshotDir(snapshot), Readers: readers},
	}
}

func newSource(t *testing.T, withFile bool, objs ...client.Object) *Source {
	t.Helper()
	scheme := runtime.NewScheme()
	require.NoError(t, clientgoscheme.AddToScheme(scheme))
	require.NoError(t, AddToScheme(scheme))
	b := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...)
	require.NoError(t, Register(context.Background(), fakeIndexer{b}))
	src := &Source{Reader: b.Build(), Project: "flag-project"}
	if withFile {
		p, err := policy.Parse([]byte(testFile))
		require.NoError(t, err)
		src.File = func() *policy.Policy { return p }
	}
	return src
}

func TestView(t *testing.T) {
	bad := dataset("team-a", "bad-reader", 1, "x", "user:ok")
	bad.Spec.Readers = append(bad.Spec.Readers, "nobody:at-all")
	escaping := dataset("team-a", "escaping", 1, "../../etc")
	src := newSource(t, true,
		ns("team-a", "prod/team-a"), ns("team-b", "prod/team-b"), ns("no-root", ""),
		owner("apps/svc", "prod"), owner("apps/dev", "dev"),
		owner("apps/file-owner", "dev"), // the file's owner wins (prod)
		&wardenv1.Owner{ObjectMeta: metav1.ObjectMeta{Name: "apps.misnamed"}, Spec: wardenv1.OwnerSpec{ServiceAccount: "apps/other", Environment: "prod"}},
		dataset("team-a", "sales", 10, "sales/head", "serviceAccount:apps/svc", "user:ann", "group:analysts"),
		dataset("team-b", "sales", 5, "stolen", "serviceAccount:apps/svc", "user:mallory"), // younger: loses the id
		dataset("team-a", "file-ds", 10, "hijack", "user:mallory"),                         // the file's id
		dataset("no-root", "orphan", 10, "x", "user:ann"),
		dataset("team-b", "dev-only", 1, "d", "serviceAccount:apps/svc", "serviceAccount:apps/dev"),
		bad, escaping,
		&wardenv1.Group{ObjectMeta: metav1.ObjectMeta{Name: "analysts"}, Spec: wardenv1.GroupSpec{Users: []string{"bea"}}},
		&wardenv1.Group{ObjectMeta: metav1.ObjectMeta{Name: "shadowed"}, Spec: wardenv1.GroupSpec{Users: []string{"mallory"}}},
		&wardenv1.Org{ObjectMeta: metav1.ObjectMeta{Name: "org-obj"}, Spec: wardenv1.OrgSpec{GCPServiceAccount: "o@p.iam.gserviceaccount.com", Members: []wardenv1.Member{"serviceAccount:apps/svc"}}},
		&wardenv1.Org{ObjectMeta: metav1.ObjectMeta{Name: "org-file"}, Spec: wardenv1.OrgSpec{GCPServiceAccount: "hijack@p.iam.gserviceaccount.com", Members: []wardenv1.Member{"serviceAccount:apps/dev"}}},
	)
	v := src.View()

	o, ok := v.Owner("apps/svc")
	assert.True(t, ok)
	assert.Equal(t, policy.Environment("prod"), o.Environment)
	o, _ = v.Owner("apps/file-owner")
	assert.Equal(t, policy.Environment("prod"), o.Environment, "the file wins")
	_, ok = v.Owner("apps/other")
	assert.False(t, ok, "an Owner not named after its service account is not in force")

	d, ok := v.Dataset("sales")
	require.True(t, ok)
	assert.Equal(t, "prod/team-a/sales/head", d.Snapshot, "under the namespace's root; the oldest Dataset of the id")
	d, _ = v.Dataset("file-ds")
	assert.Equal(t, "file/ds", d.Snapshot, "the file's dataset wins")
	for _, id := range []string{"orphan", "bad-reader", "escaping", "nothing"} {
		_, ok := v.Dataset(id)
		assert.False(t, ok, id)
	}

	assert.True(t, v.CanRead("sales", policy.Principal{User: "ann"}))
	assert.True(t, v.CanRead("sales", policy.Principal{User: "bea"}), "object group")
	assert.True(t, v.CanRead("sales", policy.Principal{User: "zoe", Groups: []string{"analysts"}}), "vouched group")
	assert.False(t, v.CanRead("sales", policy.Principal{User: "mallory"}), "the younger Dataset's readers are not in force")
	assert.True(t, v.CanRead("file-ds", policy.Principal{User: "fred"}), "file group on a file dataset")
	assert.False(t, v.CanRead("file-ds", policy.Principal{User: "mallory"}))
	assert.True(t, v.OwnerCanRead("sales", "apps/svc"))
	assert.False(t, v.OwnerCanRead("sales", "apps/nobody"))

	assert.Equal(t, []string{"file-ds", "dev-only", "sales"}, v.ReadableBy(policy.Principal{ServiceAccount: "apps/svc"}))
	assert.Equal(t, []string{"sales"}, v.ReadableBy(policy.Principal{User: "bea"}))
	assert.Empty(t, v.ReadableBy(policy.Principal{User: "mallory"}), "the file's group 'shadowed' wins over the object of that name")
	assert.Equal(t, []string{"file-ds", "dev-only", "sales"}, v.DatasetIDs())

	org, member := v.IsOrgMember("org-obj", policy.Principal{ServiceAccount: "apps/svc"})
	assert.True(t, member)
	assert.Equal(t, "o@p.iam.gserviceaccount.com", org.GCPServiceAccount)
	org, member = v.IsOrgMember("org-file", policy.Principal{ServiceAccount: "apps/dev"})
	assert.False(t, member, "the file's org wins")
	assert.Equal(t, "f@p.iam.gserviceaccount.com", org.GCPServiceAccount)
	var names []string
	for _, o := range v.OrgsOf(policy.Principal{ServiceAccount: "apps/svc"}) {
		names = append(names, o.Name)
	}
	assert.Equal(t, []string{"org-file", "org-obj"}, names)
	assert.Equal(t, "my-project", v.Project())
}

func TestViewWithoutFile(t *testing.T) {
	src := newSource(t, false, ns("team-a", "."), owner("apps/svc", "test"),
		dataset("team-a", "top", 1, "top", "serviceAccount:apps/svc"))
	v := src.View()
	d, ok := v.Dataset("top")
	require.True(t, ok)
	assert.Equal(t, "top", d.Snapshot, "root '.' is the whole share")
	assert.True(t, v.OwnerCanRead("top", "apps/svc"))
	assert.Equal(t, "flag-project", v.Project())

	src.Synced = func() bool { return false }
	assert.Nil(t, src.View(), "no policy until the cache has synced")
}

func TestEnvironments(t *testing.T) {
	d := dataset("team-a", "prod-only", 1, "p", "serviceAccount:apps/svc", "serviceAccount:apps/dev")
	d.Spec.Environments = []wardenv1.Environment{"prod"}
	v := newSource(t, false, ns("team-a", "r"), owner("apps/svc", "prod"), owner("apps/dev", "dev"), d).View()
	assert.True(t, v.OwnerCanRead("prod-only", "apps/svc"))
	assert.False(t, v.OwnerCanRead("prod-only", "apps/dev"), "an owner of another environment never gets it")
}

// An object that is not acceptable never holds an id: a tenant's older Dataset in a namespace
// without a snapshot root, or an invalid one, cannot shadow the accepted one created later.
func TestSquattedIDs(t *testing.T) {
	invalid := dataset("team-b", "ledger", 50, "../../etc", "user:mallory")
	src := newSource(t, false, ns("squat", ""), ns("team-a", "prod/team-a"), ns("team-b", "prod/team-b"),
		dataset("squat", "ledger", 100, "ledger", "user:mallory"), // oldest, no root
		invalid, // older, escapes its root
		dataset("team-a", "ledger", 1, "ledger", "user:ann"))
	v := src.View()
	d, ok := v.Dataset("ledger")
	require.True(t, ok, "the accepted Dataset holds its id")
	assert.Equal(t, "prod/team-a/ledger", d.Snapshot)
	assert.True(t, v.CanRead("ledger", policy.Principal{User: "ann"}))
	assert.False(t, v.CanRead("ledger", policy.Principal{User: "mallory"}))
}

// A namespace with a snapshot root may take only the ids its warden.dev/dataset-ids lists:
// a tenant's older Dataset there, outside its claims, neither holds nor shadows the id; a
// broken annotation claims nothing; without the annotation any id is the namespace's to take.
func TestClaimedIDs(t *testing.T) {
	claimed := func(name, root, ids string) *corev1.Namespace {
		n := ns(name, root)
		n.Annotations[contract.AnnotationDatasetIDs] = ids
		return n
	}
	squat := dataset("tenant", "finance-ledger", 100, "ledger", "user:mallory")
	broken := dataset("typo", "finance-report", 100, "report", "user:mallory")
	src := newSource(t, false,
		claimed("tenant", "prod/tenant", "tenant-*, shared-notes"),
		claimed("finance", "prod/finance", "finance-*"),
		claimed("typo", "prod/typo", "finance-*,bad id"),
		ns("open", "prod/open"),
		squat, broken,
		dataset("tenant", "tenant-logs", 10, "logs", "user:mallory"),
		dataset("tenant", "shared-notes", 10, "notes", "user:mallory"),
		dataset("finance", "finance-ledger", 1, "ledger", "user:ann"),
		dataset("finance", "finance-report", 1, "report", "user:ann"),
		dataset("open", "anything", 1, "x", "user:bob"))
	v := src.View()
	for id, want := range map[string]string{
		"finance-ledger": "prod/finance/ledger", "finance-report": "prod/finance/report",
		"tenant-logs": "prod/tenant/logs", "shared-notes": "prod/tenant/notes", "anything": "prod/open/x",
	} {
		d, ok := v.Dataset(id)
		if assert.True(t, ok, id) {
			assert.Equal(t, want, d.Snapshot, id)
		}
	}
	assert.False(t, v.CanRead("finance-ledger", policy.Principal{User: "mallory"}))

	st := &Statuses{Source: src}
	for _, tc := range []struct {
		obj    *wardenv1.Dataset
		reason string
		msg    string
	}{
		{squat, wardenv1.ReasonIDNotClaimed, `"tenant-*, shared-notes"`},
		{broken, wardenv1.ReasonInvalid, `"bad id"`},
		{dataset("finance", "finance-ledger", 1, "ledger", "user:ann"), wardenv1.ReasonAccepted, ""},
	} {
		reason, msg := st.dataset(context.Background(), tc.obj)
		assert.Equal(t, tc.reason, reason, "%s/%s: %s", tc.obj.Namespace, tc.obj.Name, msg)
		assert.Contains(t, msg, tc.msg)
	}
}

func TestParseIDClaims(t *testing.T) {
	for _, tc := range []struct {
		in       string
		allows   []string
		refuses  []string
		parseErr bool
	}{
		{in: "finance-*", allows: []string{"finance-ledger", "finance-"}, refuses: []string{"finance", "fin", "ledger-finance-x"}},
		{in: " a , b-* ", allows: []string{"a", "b-1"}, refuses: []string{"ab", "b"}},
		{in: "*", allows: []string{"x", "finance-ledger"}},
		{in: "ledger", allows: []string{"ledger"}, refuses: []string{"ledger2", "ledge"}},
		{in: "", parseErr: true},
		{in: "a,,b", parseErr: true},
		{in: "fin*ance", parseErr: true},
		{in: "**", parseErr: true},
		{in: "../x", parseErr: true},
		{in: "-x*", parseErr: true},
	} {
		c, err := parseIDClaims(tc.in)
		if tc.parseErr {
			assert.Error(t, err, tc.in)
			assert.False(t, c.allows("x"), "%q: a broken annotation claims nothing", tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		for _, id := range tc.allows {
			assert.True(t, c.allows(id), "%q allows %q", tc.in, id)
		}
		for _, id := range tc.refuses {
			assert.False(t, c.allows(id), "%q refuses %q", tc.in, id)
		}
	}
	assert.True(t, idClaims{}.allows("any"), "no annotation: any id")
}

// Whatever an admin writes in warden.dev/dataset-ids: a value Warden cannot read claims nothing;
// one it reads claims each entry as written (an id itself, a prefix what starts with it).
func FuzzIDClaims(f *testing.F) {
	for _, s := range []string{"finance-*", " a , b-* ", "*", "ledger", "", "a,,b", "fin*ance", "**", "-x*", "a*,*"} {
		f.Add(s, "finance-ledger")
	}
	f.Fuzz(func(t *testing.T, s, id string) {
		c, err := parseIDClaims(s)
		if err != nil {
			if c.allows(id) || c.check("ns", id) == nil {
				t.Fatalf("%q does not parse (%v) but claims %q", s, err, id)
			}
			return
		}
		if (c.check("ns", id) == nil) != c.allows(id) {
			t.Fatalf("%q: check and allows disagree on %q", s, id)
		}
		for _, e := range strings.Split(s, ",") {
			e = strings.TrimSpace(e)
			if prefix, ok := strings.CutSuffix(e, "*"); ok {
				if !c.allows(prefix+"x") || !c.allows(prefix) {
					t.Fatalf("%q: entry %q does not claim %q", s, e, prefix+"x")
				}
			} else if !c.allows(e) {
				t.Fatalf("%q: entry %q does not claim itself", s, e)
			}
		}
	})
}

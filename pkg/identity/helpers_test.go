package identity

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/iam"
	"cloud.google.com/go/iam/apiv1/iampb"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/warden-dev/warden/internal/testing/fakeiam"
	"github.com/warden-dev/warden/pkg/policy"
)

const (
	gsa2      = "aes2-svc@my-project.iam.gserviceaccount.com"
	gsa3      = "aes3-svc@my-project.iam.gserviceaccount.com"
	ownerA    = "apps/svc-a"
	ownerB    = "apps/svc-b"
	recordsNS = "warden-system"
	propagate = 5 * time.Minute
)

// testPolicy: svc-a may use org1 (gsa), org2 and org3; svc-b only org1; svc-c no org at all.
// People: u1 is in org1 directly and in org2 through group ds-team; u2 in no org.
const testPolicy = `
owners:
  - {serviceAccount: apps/svc-a, environment: prod, user: alice}
  - {serviceAccount: apps/svc-b, environment: prod, user: bob}
  - {serviceAccount: apps/svc-c, environment: prod, user: carol}
orgs:
  - {name: org1, gcpServiceAccount: aes1-svc@my-project.iam.gserviceaccount.com, members: [serviceAccount:apps/svc-a, serviceAccount:apps/svc-b, user:u1]}
  - {name: org2, gcpServiceAccount: aes2-svc@my-project.iam.gserviceaccount.com, members: [serviceAccount:apps/svc-a, group:ds-team]}
  - {name: org3, gcpServiceAccount: aes3-svc@my-project.iam.gserviceaccount.com, members: [serviceAccount:apps/svc-a]}
groups:
  ds-team: [u1]
gcp:
  project: my-project
`

func mustPolicy(t testing.TB, doc string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse([]byte(doc))
	require.NoError(t, err)
	return p
}

// flakyIAM fails the calls on chosen accounts with Unavailable and passes the rest to the fake:
// the fake's own outage switch takes every account down at once.
type flakyIAM struct {
	IAM
	mu   sync.Mutex
	down map[string]bool
}

func (f *flakyIAM) setDown(email string, down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down[email] = down
}

func (f *flakyIAM) GetIamPolicy(ctx context.Context, req *iampb.GetIamPolicyRequest) (*iam.Policy, error) {
	f.mu.Lock()
	down := f.down[req.GetResource()[len("projects/-/serviceAccounts/"):]]
	f.mu.Unlock()
	if down {
		return nil, status.Error(codes.Unavailable, "iam.googleapis.com is unavailable")
	}
	return f.IAM.GetIamPolicy(ctx, req)
}

// world is a binder with everything it talks to: the fake IAM (through the real client), a
// fake clientset holding the service accounts and records, and a clock.
type world struct {
	iam    *fakeiam.Server
	flaky  *flakyIAM
	kube   *fake.Clientset
	clock  *clocktesting.FakeClock
	pol    *policy.Policy
	binder *Binder
}

func newWorld(t *testing.T) *world {
	t.Helper()
	fakeIAM, p := newPolicies(t)
	fakeIAM.AddAccount(gsa3)
	flaky := &flakyIAM{IAM: p.IAM, down: map[string]bool{}}
	p.IAM = flaky
	w := &world{
		iam: fakeIAM, flaky: flaky, clock: clocktesting.NewFakeClock(time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)),
		pol: mustPolicy(t, testPolicy),
		kube: newKube(
			&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "svc-a", Annotations: map[string]string{"kept": "yes"}}},
			&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "svc-b"}},
			&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "svc-c"}},
		),
	}
	w.binder = &Binder{
		Policies: p, Records: &Records{Kube: w.kube, Namespace: recordsNS},
		Kube: w.kube, Policy: func() policy.View {
			if w.pol == nil {
				return nil
			}
			return w.pol
		}, Propagation: propagate, Now: w.clock.Now,
	}
	return w
}

func (w *world) annotation(t *testing.T, owner string) string {
	t.Helper()
	ns, ksa := splitOwner(owner)
	sa, err := w.kube.CoreV1().ServiceAccounts(ns).Get(context.Background(), ksa, metav1.GetOptions{})
	require.NoError(t, err)
	return sa.Annotations[AnnotationGSA]
}

func (w *world) record(t *testing.T, owner string) (Record, bool) {
	t.Helper()
	rec, ok, err := w.binder.Records.Get(context.Background(), owner)
	require.NoError(t, err)
	return rec, ok
}

func (w *world) members(email string) []string { return w.iam.Members(email, Role) }

// writes counts IAM writes on every account.
func (w *world) writes() int { return w.iam.Writes(gsa) + w.iam.Writes(gsa2) + w.iam.Writes(gsa3) }

func memberOf(owner string) string {
	ns, ksa := splitOwner(owner)
	return Member("my-project", ns, ksa)
}

// failKube makes verb on resource fail while the returned switch is on.
func failKube(kube *fake.Clientset, verb, resource string) *failSwitch {
	s := &failSwitch{}
	kube.PrependReactor(verb, resource, func(k8stesting.Action) (bool, runtime.Object, error) {
		if s.on() {
			return true, nil, errors.New("etcdserver: request timed out")
		}
		return false, nil, nil
	})
	s.set(true)
	return s
}

type failSwitch struct {
	mu      sync.Mutex
	failing bool
}

func (s *failSwitch) set(v bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failing = v
}

func (s *failSwitch) on() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failing
}

type kubeFake = *fake.Clientset

// newKube is a fake clientset that keeps metadata.resourceVersion the way the API server does:
// set on create, checked and bumped on update. The plain fake leaves it empty, and Records tells
// a create from an update, and notices another replica's write, by it.
func newKube(objs ...runtime.Object) *fake.Clientset {
	kube := fake.NewClientset(objs...)
	var mu sync.Mutex
	serial := 100
	next := func() string {
		mu.Lock()
		defer mu.Unlock()
		serial++
		return fmt.Sprint(serial)
	}
	kube.PrependReactor("create", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if m, err := meta.Accessor(a.(k8stesting.CreateAction).GetObject()); err == nil {
			m.SetResourceVersion(next())
		}
		return false, nil, nil
	})
	kube.PrependReactor("update", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		m, err := meta.Accessor(a.(k8stesting.UpdateAction).GetObject())
		if err != nil {
			return false, nil, nil
		}
		cur, err := kube.Tracker().Get(a.GetResource(), a.GetNamespace(), m.GetName())
		if err != nil {
			return false, nil, nil // the tracker answers NotFound
		}
		if cm, _ := meta.Accessor(cur); cm.GetResourceVersion() != m.GetResourceVersion() {
			gr := schema.GroupResource{Group: a.GetResource().Group, Resource: a.GetResource().Resource}
			return true, nil, apierrors.NewConflict(gr, m.GetName(), errors.New("the object has been modified; please apply your changes to the latest version and try again"))
		}
		m.SetResourceVersion(next())
		return false, nil, nil
	})
	return kube
}

// eventually waits for cond; the deadline only stops a test that would otherwise hang.
func eventually(t *testing.T, cond func() bool, msg string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", msg)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

package identity

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	fakeclient "sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/warden-dev/warden/pkg/guard"
	"github.com/warden-dev/warden/pkg/policy"
)

func pod(name, ksa string, phase corev1.PodPhase) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: name},
		Spec:       corev1.PodSpec{ServiceAccountName: ksa},
		Status:     corev1.PodStatus{Phase: phase},
	}
}

func deleting(p *corev1.Pod) *corev1.Pod {
	now := metav1.Now()
	p.DeletionTimestamp = &now
	p.Finalizers = []string{"example.com/hold"} // a deleting object only exists while held
	return p
}

// podCache stands in for the manager's cache, with the same index SetupWithManager registers.
func podCache(pods ...*corev1.Pod) client.Reader {
	b := fakeclient.NewClientBuilder().WithIndex(&corev1.Pod{}, podServiceAccountIndex, func(o client.Object) []string {
		return []string{guard.ServiceAccount(o.(*corev1.Pod))}
	})
	for _, p := range pods {
		b = b.WithObjects(p)
	}
	return b.Build()
}

func newReconciler(w *world, pods ...*corev1.Pod) *Reconciler {
	return &Reconciler{Binder: w.binder, Log: slog.New(slog.DiscardHandler), Resync: time.Hour, reader: podCache(pods...)}
}

func reconcileSA(t *testing.T, r *Reconciler, owner string) error {
	t.Helper()
	ns, ksa := splitOwner(owner)
	res, err := r.Reconcile(context.Background(), reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: ksa}})
	assert.Zero(t, res, "no requeue: the resync is the retry")
	return err
}

func TestReconcileUnbindsWhenNoLivePodRuns(t *testing.T) {
	for _, tc := range []struct {
		name    string
		pods    []*corev1.Pod
		unbound bool
	}{
		{"a running pod", []*corev1.Pod{pod("p", "svc-a", corev1.PodRunning)}, false},
		{"a pending pod", []*corev1.Pod{pod("p", "svc-a", corev1.PodPending)}, false},
		{"a pod with an unknown phase", []*corev1.Pod{pod("p", "svc-a", corev1.PodUnknown)}, false},
		{"one running among finished ones", []*corev1.Pod{pod("done", "svc-a", corev1.PodSucceeded), pod("p", "svc-a", corev1.PodRunning)}, false},
		{"no pod", nil, true},
		{"only pods of other service accounts", []*corev1.Pod{pod("p", "svc-b", corev1.PodRunning)}, true},
		{"a succeeded pod", []*corev1.Pod{pod("p", "svc-a", corev1.PodSucceeded)}, true},
		{"a failed pod", []*corev1.Pod{pod("p", "svc-a", corev1.PodFailed)}, true},
		{"a pod being deleted", []*corev1.Pod{deleting(pod("p", "svc-a", corev1.PodRunning))}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			_, err := w.binder.Bind(context.Background(), ownerA, policy.Principal{ServiceAccount: ownerA}, "org1")
			require.NoError(t, err)
			r := newReconciler(w, tc.pods...)
			require.NoError(t, reconcileSA(t, r, ownerA))
			_, bound := w.record(t, ownerA)
			if tc.unbound {
				assert.False(t, bound)
				assert.Empty(t, w.annotation(t, ownerA))
				assert.Empty(t, w.members(gsa))
			} else {
				assert.True(t, bound)
				assert.Equal(t, gsa, w.annotation(t, ownerA))
				assert.Equal(t, []string{memberOf(ownerA)}, w.members(gsa))
			}
		})
	}
}

// A pod without a service account name runs as "default".
func TestReconcileDefaultServiceAccount(t *testing.T) {
	p := pod("p", "", corev1.PodRunning)
	assert.Equal(t, "default", guard.ServiceAccount(p))
	r := &Reconciler{reader: podCache(p)}
	inUse, err := r.inUse(context.Background(), "apps", "default")
	require.NoError(t, err)
	assert.True(t, inUse)
}

func TestReconcileWithoutRecordDoesNothing(t *testing.T) {
	w := newWorld(t)
	r := newReconciler(w)
	require.NoError(t, reconcileSA(t, r, ownerB))
	assert.Zero(t, w.writes())
	for _, a := range w.kube.Actions() {
		assert.NotEqual(t, "patch", a.GetVerb(), "no annotation touched for a service account Warden never bound")
	}
}

// flipReader answers "no pods" to the first List and a running pod afterwards: a pod that
// started while the reconciler was deciding.
type flipReader struct {
	client.Reader
	lists atomic.Int32
	late  *corev1.Pod
}

func (f *flipReader) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	if f.lists.Add(1) == 1 {
		return nil
	}
	list.(*corev1.PodList).Items = []corev1.Pod{*f.late}
	return nil
}

func TestReconcileLooksAgainUnderTheLock(t *testing.T) {
	w := newWorld(t)
	_, err := w.binder.Bind(context.Background(), ownerA, policy.Principal{ServiceAccount: ownerA}, "org1")
	require.NoError(t, err)
	r := newReconciler(w)
	fr := &flipReader{Reader: r.reader, late: pod("new", "svc-a", corev1.PodPending)}
	r.reader = fr
	require.NoError(t, reconcileSA(t, r, ownerA))
	assert.EqualValues(t, 2, fr.lists.Load())
	_, bound := w.record(t, ownerA)
	assert.True(t, bound, "the pod that started meanwhile keeps its identity")
	assert.Equal(t, gsa, w.annotation(t, ownerA))
}

type failingReader struct{ client.Reader }

func (failingReader) List(context.Context, client.ObjectList, ...client.ListOption) error {
	return errors.New("cache not synced")
}

func TestReconcileErrors(t *testing.T) {
	t.Run("reading pods", func(t *testing.T) {
		w := newWorld(t)
		_, err := w.binder.Bind(context.Background(), ownerA, policy.Principal{ServiceAccount: ownerA}, "org1")
		require.NoError(t, err)
		r := newReconciler(w)
		r.reader = failingReader{}
		assert.ErrorContains(t, reconcileSA(t, r, ownerA), "cache not synced")
		_, bound := w.record(t, ownerA)
		assert.True(t, bound, "nothing is unbound on an error")
	})
	t.Run("unbinding", func(t *testing.T) {
		w := newWorld(t)
		_, err := w.binder.Bind(context.Background(), ownerA, policy.Principal{ServiceAccount: ownerA}, "org1")
		require.NoError(t, err)
		w.iam.SetDown(true)
		err = reconcileSA(t, newReconciler(w), ownerA)
		assert.ErrorIs(t, err, ErrIAMUnavailable, "returned, so the controller retries")
		assert.ErrorContains(t, err, ownerA)
	})
}

func TestResyncChecksEveryRecord(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	_, err := w.binder.Bind(ctx, ownerA, policy.Principal{ServiceAccount: ownerA}, "org1")
	require.NoError(t, err)
	_, err = w.binder.Bind(ctx, ownerB, policy.Principal{ServiceAccount: ownerB}, "org1")
	require.NoError(t, err)
	// svc-a still runs; svc-b's last pod went while no replica was watching.
	r := newReconciler(w, pod("p", "svc-a", corev1.PodRunning))

	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.resyncLoop(rctx) }()
	eventually(t, func() bool { _, bound := w.record(t, ownerB); return !bound }, "the resync unbinds svc-b")
	cancel()
	select {
	case err := <-done:
		assert.NoError(t, err, "the loop ends cleanly with its context")
	case <-time.After(10 * time.Second):
		t.Fatal("the resync loop did not stop")
	}
	_, bound := w.record(t, ownerA)
	assert.True(t, bound)
	assert.Equal(t, []string{memberOf(ownerA)}, w.members(gsa))
	assert.Empty(t, w.annotation(t, ownerB))
}

func TestResyncSurvivesFailures(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	_, err := w.binder.Bind(ctx, ownerA, policy.Principal{ServiceAccount: ownerA}, "org1")
	require.NoError(t, err)
	r := newReconciler(w)

	list := failKube(w.kube, "list", "configmaps")
	r.resync(ctx) // logged, nothing else
	_, bound := w.record(t, ownerA)
	assert.True(t, bound)

	list.set(false)
	w.iam.SetDown(true)
	r.resync(ctx) // one owner failing does not stop the pass
	w.iam.SetDown(false)
	r.resync(ctx)
	_, bound = w.record(t, ownerA)
	assert.False(t, bound)
}

func TestStripPod(t *testing.T) {
	now := metav1.Now()
	full := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "apps", UID: "u-1", ResourceVersion: "7", DeletionTimestamp: &now,
			Labels: map[string]string{"a": "b"}, Annotations: map[string]string{"big": "x"}},
		Spec: corev1.PodSpec{ServiceAccountName: "svc-a", Containers: []corev1.Container{{Name: "app", Image: "img"}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.1",
			ContainerStatuses: []corev1.ContainerStatus{{Name: "app"}}},
	}
	got, err := StripPod(full)
	require.NoError(t, err)
	assert.Equal(t, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "apps", UID: "u-1", ResourceVersion: "7", DeletionTimestamp: &now},
		Spec:       corev1.PodSpec{ServiceAccountName: "svc-a"},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning},
	}, got)
	assert.Equal(t, "svc-a", full.Spec.ServiceAccountName, "the cached original is not modified")

	other := &corev1.Node{}
	got, err = StripPod(other)
	require.NoError(t, err)
	assert.Same(t, other, got, "anything else passes through")
}

// running keeps both owners in use, so only the policy decides what the resync does.
func running() []*corev1.Pod {
	return []*corev1.Pod{pod("a", "svc-a", corev1.PodRunning), pod("b", "svc-b", corev1.PodRunning)}
}

const org1Line = "  - {name: org1, gcpServiceAccount: aes1-svc@my-project.iam.gserviceaccount.com, members: [serviceAccount:apps/svc-a, serviceAccount:apps/svc-b, user:u1]}\n"

// edited is testPolicy with edits (from, to, from, to, ...), each of which must apply.
func edited(t *testing.T, pairs ...string) string {
	t.Helper()
	doc := testPolicy
	for i := 0; i < len(pairs); i += 2 {
		require.Contains(t, doc, pairs[i])
		doc = strings.Replace(doc, pairs[i], pairs[i+1], 1)
	}
	return doc
}

const remapOrg1 = "{name: org1, gcpServiceAccount: aes1-svc"

// assertBoundTo checks owner's record, annotation and IAM agree on want ("" for unbound), and
// that no other account still has the member.
func assertBoundTo(t *testing.T, w *world, owner, want string) {
	t.Helper()
	rec, bound := w.record(t, owner)
	assert.Equal(t, want != "", bound, "record of %s", owner)
	if bound {
		assert.Equal(t, want, rec.GSA, "record of %s", owner)
		assert.Empty(t, rec.Previous, "nothing left to clean up for %s", owner)
	}
	assert.Equal(t, want, w.annotation(t, owner), "annotation of %s", owner)
	for _, g := range []string{gsa, gsa2, gsa3} {
		assert.Equal(t, g == want, slices.Contains(w.members(g), memberOf(owner)), "%s on %s", owner, g)
	}
}

func TestResyncFollowsThePolicy(t *testing.T) {
	parsed := func(pairs ...string) func(t *testing.T) *policy.Policy {
		return func(t *testing.T) *policy.Policy { return mustPolicy(t, edited(t, pairs...)) }
	}
	for _, tc := range []struct {
		name         string
		pol          func(t *testing.T) *policy.Policy // nil: no policy loaded
		wantA, wantB string
	}{
		{"unchanged", parsed(), gsa, gsa},
		{"an owner left the org", parsed("serviceAccount:apps/svc-a, serviceAccount:apps/svc-b", "serviceAccount:apps/svc-b"), "", gsa},
		{"the org remapped", parsed(remapOrg1, "{name: org1, gcpServiceAccount: aes3-svc"), gsa3, gsa3},
		{"the org remapped onto another org's account", parsed(remapOrg1, "{name: org1, gcpServiceAccount: aes2-svc"), gsa2, gsa2},
		{"the org deleted", parsed(org1Line, ""), "", ""},
		{"no policy loaded", nil, gsa, gsa},
		{"the org remapped, but no gcp.project to name the member by", func(t *testing.T) *policy.Policy {
			p := parsed(remapOrg1, "{name: org1, gcpServiceAccount: aes3-svc")(t)
			p.GCP.Project = "" // the file refuses that; Org objects without --gcp-project do not
			return p
		}, gsa, gsa},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			ctx := context.Background()
			for _, o := range []string{ownerA, ownerB} {
				_, err := w.binder.Bind(ctx, o, policy.Principal{ServiceAccount: o}, "org1")
				require.NoError(t, err)
			}
			w.pol = nil
			if tc.pol != nil {
				w.pol = tc.pol(t)
			}
			writes := w.writes()
			r := newReconciler(w, running()...)
			r.resync(ctx)
			assertBoundTo(t, w, ownerA, tc.wantA)
			assertBoundTo(t, w, ownerB, tc.wantB)
			if tc.wantA == gsa && tc.wantB == gsa {
				assert.Equal(t, writes, w.writes(), "nothing written to IAM")
			}
			if tc.wantA == gsa3 {
				rec, _ := w.record(t, ownerA)
				assert.Equal(t, "org1", rec.Org)
			}
		})
	}
}

// A missing policy says nothing about membership: one warning per pass, whatever the number of
// owners, and nothing unbound.
func TestResyncWarnsOnceWithoutAPolicy(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	for _, o := range []string{ownerA, ownerB} {
		_, err := w.binder.Bind(ctx, o, policy.Principal{ServiceAccount: o}, "org1")
		require.NoError(t, err)
	}
	w.pol = nil
	var logs bytes.Buffer
	r := newReconciler(w, running()...)
	r.Log = slog.New(slog.NewTextHandler(&logs, nil))
	r.resync(ctx)
	assert.Equal(t, 1, strings.Count(logs.String(), "level=WARN"), logs.String())
	assert.Contains(t, logs.String(), "bindings left as they are")
	assertBoundTo(t, w, ownerA, gsa)
}

// A move that fails part-way leaves a record the next resync finishes from; the annotation
// never names an account the member is not bound on.
func TestResyncFinishesAFailedMove(t *testing.T) {
	remapped := edited(t, remapOrg1, "{name: org1, gcpServiceAccount: aes3-svc")
	for _, tc := range []struct {
		name       string
		fail       func(w *world) (undo func())
		annotation string // while failing
	}{
		{"binding on the new account", func(w *world) func() {
			w.flaky.setDown(gsa3, true)
			return func() { w.flaky.setDown(gsa3, false) }
		}, gsa},
		{"annotating the service account", func(w *world) func() {
			patch := failKube(w.kube, "patch", "serviceaccounts")
			return func() { patch.set(false) }
		}, gsa},
		{"removing the old binding", func(w *world) func() {
			w.flaky.setDown(gsa, true)
			return func() { w.flaky.setDown(gsa, false) }
		}, gsa3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			ctx := context.Background()
			_, err := w.binder.Bind(ctx, ownerA, policy.Principal{ServiceAccount: ownerA}, "org1")
			require.NoError(t, err)
			w.pol = mustPolicy(t, remapped)
			r := newReconciler(w, running()...)

			undo := tc.fail(w)
			r.resync(ctx)
			rec, bound := w.record(t, ownerA)
			require.True(t, bound)
			assert.Equal(t, gsa3, rec.GSA, "the record names the new account first")
			assert.Equal(t, gsa, rec.Previous, "and the old one still to clean up")
			assert.Equal(t, tc.annotation, w.annotation(t, ownerA))
			if tc.annotation == gsa {
				assert.Contains(t, w.members(gsa), memberOf(ownerA), "the identity in use stays until the new one is in place")
			}

			undo()
			r.resync(ctx)
			assertBoundTo(t, w, ownerA, gsa3)
		})
	}
}

// A policy change runs the resync at once, not at the next tick (an hour away here).
func TestResyncRunsWhenThePolicyChanges(t *testing.T) {
	for _, tc := range []struct {
		name   string
		signal func(r *Reconciler, file chan struct{})
	}{
		{"PolicyChanged", func(r *Reconciler, _ chan struct{}) { r.PolicyChanged() }},
		{"the policy file reloaded", func(_ *Reconciler, file chan struct{}) { file <- struct{}{} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			ctx := context.Background()
			_, err := w.binder.Bind(ctx, ownerA, policy.Principal{ServiceAccount: ownerA}, "org1")
			require.NoError(t, err)
			var cur atomic.Pointer[policy.Policy]
			cur.Store(w.pol)
			looked := make(chan struct{}, 1)
			w.binder.Policy = func() policy.View {
				select {
				case looked <- struct{}{}:
				default:
				}
				return cur.Load()
			}
			file := make(chan struct{}, 1)
			r := newReconciler(w, running()...)
			r.FileChanged = file

			rctx, cancel := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() { _ = r.resyncLoop(rctx); close(done) }()
			defer func() { cancel(); <-done }()
			<-looked // the first pass has read the old policy
			cur.Store(mustPolicy(t, edited(t, remapOrg1, "{name: org1, gcpServiceAccount: aes3-svc")))
			tc.signal(r, file)
			eventually(t, func() bool { return slices.Contains(w.members(gsa3), memberOf(ownerA)) }, "the binding moved")
			eventually(t, func() bool { return !slices.Contains(w.members(gsa), memberOf(ownerA)) }, "the old binding went")
		})
	}
}

func TestPolicyChangedNeverBlocks(t *testing.T) {
	r := &Reconciler{}
	for range 3 {
		r.PolicyChanged() // nobody listens yet: folded into one pending resync
	}
	assert.Len(t, r.changes(), 1)
}

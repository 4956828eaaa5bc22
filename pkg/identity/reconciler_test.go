package identity

import (
	"context"
	"errors"
	"log/slog"
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

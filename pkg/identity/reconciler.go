package identity

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/warden-dev/warden/pkg/guard"
)

// podServiceAccountIndex indexes cached pods by their service account.
const podServiceAccountIndex = "spec.serviceAccountName"

// Reconciler removes bindings nobody uses: when the last running pod of a bound Kubernetes
// service account goes away, its binding and annotation are removed; a periodic resync goes
// through every record Warden keeps, which also catches deletions missed while no replica led.
// It runs on the leader only.
type Reconciler struct {
	Binder *Binder
	Resync time.Duration
	Log    *slog.Logger

	reader client.Reader
}

// StripPod keeps only what the reconciler reads of a pod, so caching every pod of the cluster
// stays cheap. Use it as the cache's transform for pods.
func StripPod(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, UID: p.UID, ResourceVersion: p.ResourceVersion, DeletionTimestamp: p.DeletionTimestamp},
		Spec:       corev1.PodSpec{ServiceAccountName: p.Spec.ServiceAccountName},
		Status:     corev1.PodStatus{Phase: p.Status.Phase},
	}, nil
}

// SetupWithManager registers the controller (pod events, keyed by service account) and the
// resync loop.
func (r *Reconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	if r.Log == nil {
		r.Log = slog.New(slog.DiscardHandler)
	}
	if r.Resync <= 0 {
		r.Resync = 10 * time.Minute
	}
	if err := mgr.GetFieldIndexer().IndexField(ctx, &corev1.Pod{}, podServiceAccountIndex, func(o client.Object) []string {
		return []string{guard.ServiceAccount(o.(*corev1.Pod))}
	}); err != nil {
		return err
	}
	r.reader = mgr.GetCache()
	err := ctrl.NewControllerManagedBy(mgr).
		Named("warden-identity").
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: guard.ServiceAccount(o.(*corev1.Pod))}}}
		})).
		Complete(r)
	if err != nil {
		return err
	}
	// A plain runnable needs leader election, like the controller.
	return mgr.Add(manager.RunnableFunc(r.resyncLoop))
}

// Reconcile checks one Kubernetes service account (request name = the KSA).
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	return reconcile.Result{}, r.check(ctx, req.Namespace+"/"+req.Name)
}

// check unbinds owner when no live pod runs as it. Pods are read from the cache first, so the
// common case (the service account still has pods) costs no API call.
func (r *Reconciler) check(ctx context.Context, owner string) error {
	ns, ksa := splitOwner(owner)
	inUse, err := r.inUse(ctx, ns, ksa)
	if err != nil || inUse {
		return err
	}
	if _, had, err := r.Binder.Records.Get(ctx, owner); err != nil || !had {
		return err
	}
	unlock := r.Binder.lock(owner)
	defer unlock()
	// A bind may have started a pod's life while we looked; look again under the lock.
	if inUse, err := r.inUse(ctx, ns, ksa); err != nil || inUse {
		return err
	}
	r.Log.Info("no pod runs as the service account any more; removing its workload identity", "owner", owner)
	if err := r.Binder.reset(ctx, owner); err != nil {
		return fmt.Errorf("unbinding %s: %w", owner, err)
	}
	return nil
}

func (r *Reconciler) inUse(ctx context.Context, ns, ksa string) (bool, error) {
	var pods corev1.PodList
	if err := r.reader.List(ctx, &pods, client.InNamespace(ns), client.MatchingFields{podServiceAccountIndex: ksa}); err != nil {
		return false, err
	}
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			return true, nil
		}
	}
	return false, nil
}

func (r *Reconciler) resyncLoop(ctx context.Context) error {
	t := time.NewTicker(r.Resync)
	defer t.Stop()
	for {
		r.resync(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// resync checks every owner Warden has a record of.
func (r *Reconciler) resync(ctx context.Context) {
	owners, err := r.Binder.Records.Owners(ctx)
	if err != nil {
		r.Log.Warn("identity resync: reading records", "error", err)
		return
	}
	for _, o := range owners {
		if err := r.check(ctx, o); err != nil {
			r.Log.Warn("identity resync", "owner", o, "error", err)
		}
	}
}

func splitOwner(owner string) (string, string) {
	ns, ksa, _ := strings.Cut(owner, "/")
	return ns, ksa
}

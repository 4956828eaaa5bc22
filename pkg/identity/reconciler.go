package identity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	wardenv1 "github.com/warden-dev/warden/pkg/apis/warden/v1alpha1"
	"github.com/warden-dev/warden/pkg/guard"
	"github.com/warden-dev/warden/pkg/policy"
)

// podServiceAccountIndex indexes cached pods by their service account.
const podServiceAccountIndex = "spec.serviceAccountName"

// Reconciler removes bindings nobody uses, and bindings the policy no longer backs: when the
// last running pod of a bound Kubernetes service account goes away, its binding and annotation
// are removed; a resync goes through every record Warden keeps, which also catches deletions
// missed while no replica led, and makes each binding follow the policy in force (an owner that
// left its org, or an org that is gone, is unbound; an org remapped to another GCP service
// account moves its members there). The resync runs every Resync and at once when the policy
// changes. It runs on the leader only.
type Reconciler struct {
	Binder *Binder
	Resync time.Duration
	Log    *slog.Logger
	// FileChanged signals a policy file reload (policy.Store.Changed).
	FileChanged <-chan struct{}
	// OrgObjects says orgs may also be Org objects: their changes trigger a resync too.
	OrgObjects bool

	reader  client.Reader
	once    sync.Once
	changed chan struct{}
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
	b := ctrl.NewControllerManagedBy(mgr).
		Named("warden-identity").
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: guard.ServiceAccount(o.(*corev1.Pod))}}}
		}))
	if r.OrgObjects {
		// A spec change of an Org may remap or drop bindings (the resync decides which); status
		// writes, which the policy-status controller makes, do not bump the generation.
		b = b.Watches(&wardenv1.Org{}, handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
			r.PolicyChanged()
			return nil
		}), builder.WithPredicates(predicate.GenerationChangedPredicate{}))
	}
	if err := b.Complete(r); err != nil {
		return err
	}
	// A plain runnable needs leader election, like the controller.
	return mgr.Add(manager.RunnableFunc(r.resyncLoop))
}

// Reconcile checks one Kubernetes service account (request name = the KSA).
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	return reconcile.Result{}, r.check(ctx, req.Namespace+"/"+req.Name)
}

// PolicyChanged makes the resync loop run now. It never blocks, and changes that arrive while a
// resync is already due are folded into that one.
func (r *Reconciler) PolicyChanged() {
	select {
	case r.changes() <- struct{}{}:
	default:
	}
}

func (r *Reconciler) changes() chan struct{} {
	r.once.Do(func() { r.changed = make(chan struct{}, 1) })
	return r.changed
}

// check unbinds owner when no live pod runs as it. Pods are read from the cache first, so the
// common case (the service account still has pods) costs no API call: pod events come often,
// which is why the policy is only compared by the resync (follow).
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
		case <-r.changes():
		case <-r.FileChanged:
		}
	}
}

// resync checks every owner Warden has a record of: in use, and backed by the policy.
func (r *Reconciler) resync(ctx context.Context) {
	owners, err := r.Binder.Records.Owners(ctx)
	if err != nil {
		r.Log.Warn("identity resync: reading records", "error", err)
		return
	}
	var unsure error
	for _, o := range owners {
		err := r.check(ctx, o)
		if err == nil {
			err = r.follow(ctx, o)
		}
		switch {
		case errors.Is(err, ErrNoPolicy), errors.Is(err, ErrNoProject):
			unsure = err
		case err != nil:
			r.Log.Warn("identity resync", "owner", o, "error", err)
		}
	}
	if unsure != nil {
		// A policy that is missing says nothing about who left an org: never unbind on it.
		r.Log.Warn("identity resync: bindings left as they are until a policy with a gcp.project is loaded", "error", unsure)
	}
}

// follow makes owner's binding agree with the policy in force: an owner no longer in its org, or
// an org that is gone, is unbound; an org mapped to another GCP service account moves the
// binding there, in Bind's order (so a failure part-way is finished by the next resync), and a
// previous account whose clean-up failed is cleaned up.
func (r *Reconciler) follow(ctx context.Context, owner string) error {
	defer r.Binder.lock(owner)()
	rec, had, err := r.Binder.Records.Get(ctx, owner)
	if err != nil || !had {
		return err
	}
	// Read under the lock: a Bind that just ran under a newer policy is never undone by an
	// older one.
	pol := r.Binder.Policy()
	if pol == nil {
		return ErrNoPolicy
	}
	o, member := pol.IsOrgMember(rec.Org, policy.Principal{ServiceAccount: owner})
	why := ""
	switch {
	case o.Name == "":
		why = "the org is no longer in the policy"
	case !member:
		why = "the owner is no longer a member of the org"
	case o.GCPServiceAccount == rec.GSA && rec.Previous == "":
		return nil
	case pol.Project() == "":
		return ErrNoProject
	}
	if why != "" {
		r.Log.Info(why+"; removing its workload identity", "owner", owner, "org", rec.Org, "gsa", rec.GSA)
		if err := r.Binder.reset(ctx, owner); err != nil {
			return fmt.Errorf("unbinding %s: %w", owner, err)
		}
		return nil
	}
	if o.GCPServiceAccount != rec.GSA {
		r.Log.Info("the org maps to another GCP service account; moving the workload identity", "owner", owner, "org", o.Name, "from", rec.GSA, "to", o.GCPServiceAccount)
	}
	if _, err := r.Binder.bind(ctx, pol.Project(), owner, o); err != nil {
		return fmt.Errorf("moving %s to %s: %w", owner, o.GCPServiceAccount, err)
	}
	return nil
}

func splitOwner(owner string) (string, string) {
	ns, ksa, _ := strings.Cut(owner, "/")
	return ns, ksa
}

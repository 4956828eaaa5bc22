package clusterpolicy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	wardenv1 "github.com/warden-dev/warden/pkg/apis/warden/v1alpha1"
)

// Statuses writes condition Accepted on every Owner, Dataset, Group, Org, Space and StoragePolicy: whether the view
// uses it, and when not, why. It decides with the same functions as the view, so what the
// status says is what Warden does. It runs on the leader only (one writer).
// conflictRetry is how soon a status write that lost a conflict is tried again.
const conflictRetry = time.Second

type Statuses struct {
	Source *Source
	// Client writes status (the manager's client).
	Client client.Client
	// FileChanged signals a policy file reload (conflicts with the file may have changed).
	FileChanged <-chan struct{}
	// Resync re-checks every object this often (default 5 minutes).
	Resync time.Duration
	Log    *slog.Logger
}

// SetupWithManager registers one controller per kind.
func (st *Statuses) SetupWithManager(mgr ctrl.Manager) error {
	if st.Resync == 0 {
		st.Resync = 5 * time.Minute
	}
	if st.Log == nil {
		st.Log = slog.New(slog.DiscardHandler)
	}
	kinds := []struct {
		obj    client.Object
		decide func(context.Context, client.Object) (string, string)
		extra  func(*builder.Builder) *builder.Builder
	}{
		{&wardenv1.Owner{}, st.owner, nil},
		{&wardenv1.Group{}, st.group, nil},
		{&wardenv1.Org{}, st.org, nil},
		{&wardenv1.StoragePolicy{}, st.storagePolicy, nil},
		{&wardenv1.Space{}, st.space, func(b *builder.Builder) *builder.Builder {
			// A space's standing changes with its org and the other spaces of its bucket.
			return b.
				Watches(&wardenv1.Org{}, handler.EnqueueRequestsFromMapFunc(st.spacesOfOrg)).
				Watches(&wardenv1.Space{}, handler.EnqueueRequestsFromMapFunc(st.sameBucket))
		}},
		{&wardenv1.Dataset{}, st.dataset, func(b *builder.Builder) *builder.Builder {
			// A dataset's standing changes with its namespace's root and with the other
			// Datasets of the same id.
			return b.
				Watches(&metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}},
					handler.EnqueueRequestsFromMapFunc(st.datasetsIn)).
				Watches(&wardenv1.Dataset{}, handler.EnqueueRequestsFromMapFunc(st.sameID))
		}},
	}
	var fans []chan event.GenericEvent
	for _, k := range kinds {
		k := k
		events := make(chan event.GenericEvent, 1024)
		fans = append(fans, events)
		b := ctrl.NewControllerManagedBy(mgr).
			Named("warden-status-" + fmt.Sprintf("%T", k.obj)[len("*v1alpha1."):]).
			For(k.obj).
			// Tests run several webhook processes in one binary; names need not be unique.
			WithOptions(controller.Options{SkipNameValidation: ptr.To(true)}).
			WatchesRawSource(source.Channel(events, &handler.EnqueueRequestForObject{}))
		if k.extra != nil {
			b = k.extra(b)
		}
		r := reconcile.Func(func(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
			return st.reconcile(ctx, req, k.obj, k.decide)
		})
		if err := b.Complete(r); err != nil {
			return err
		}
	}
	if st.FileChanged != nil {
		if err := mgr.Add(onLeader(func(ctx context.Context) error {
			st.fanOut(ctx, fans)
			return nil
		})); err != nil {
			return err
		}
	}
	return nil
}

// onLeader runs with the controllers it feeds: on the leader only.
type onLeader func(ctx context.Context) error

func (f onLeader) Start(ctx context.Context) error { return f(ctx) }
func (onLeader) NeedLeaderElection() bool          { return true }

var _ manager.LeaderElectionRunnable = onLeader(nil)

// fanOut re-checks every object when the file changes.
func (st *Statuses) fanOut(ctx context.Context, fans []chan event.GenericEvent) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-st.FileChanged:
		}
		lists := []client.ObjectList{&wardenv1.OwnerList{}, &wardenv1.GroupList{}, &wardenv1.OrgList{},
			&wardenv1.StoragePolicyList{}, &wardenv1.SpaceList{}, &wardenv1.DatasetList{}}
		for i, l := range lists {
			if err := st.Source.Reader.List(ctx, l); err != nil {
				continue
			}
			_ = meta.EachListItem(l, func(o runtime.Object) error {
				select {
				case fans[i] <- event.GenericEvent{Object: o.(client.Object)}:
				case <-ctx.Done():
				}
				return nil
			})
		}
	}
}

func (st *Statuses) reconcile(ctx context.Context, req reconcile.Request, kind client.Object, decide func(context.Context, client.Object) (string, string)) (reconcile.Result, error) {
	cached := kind.DeepCopyObject().(client.Object)
	if err := st.Client.Get(ctx, req.NamespacedName, cached); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	// The cache hands out its own objects (no copy on read): copy before changing the status.
	obj := cached.DeepCopyObject().(client.Object)
	reason, msg := decide(ctx, obj)
	cond := metav1.Condition{Type: wardenv1.ConditionAccepted, Status: metav1.ConditionTrue, Reason: reason, Message: msg, ObservedGeneration: obj.GetGeneration()}
	if reason != wardenv1.ReasonAccepted {
		cond.Status = metav1.ConditionFalse
	}
	status := statusOf(obj)
	if status.ObservedGeneration == obj.GetGeneration() {
		if c := meta.FindStatusCondition(status.Conditions, cond.Type); c != nil && c.Status == cond.Status && c.Reason == cond.Reason && c.Message == cond.Message {
			return reconcile.Result{RequeueAfter: st.Resync}, nil
		}
	}
	status.ObservedGeneration = obj.GetGeneration()
	meta.SetStatusCondition(&status.Conditions, cond)
	if err := st.Client.Status().Update(ctx, obj); err != nil {
		if apierrors.IsConflict(err) {
			// Someone wrote the object meanwhile: look again shortly, from the cache.
			return reconcile.Result{RequeueAfter: conflictRetry}, nil
		}
		return reconcile.Result{}, err
	}
	if cond.Status == metav1.ConditionFalse {
		st.Log.Info("policy object not accepted", "kind", fmt.Sprintf("%T", obj), "namespace", req.Namespace, "name", req.Name, "reason", reason, "message", msg)
	}
	return reconcile.Result{RequeueAfter: st.Resync}, nil
}

func statusOf(o client.Object) *wardenv1.Status {
	switch v := o.(type) {
	case *wardenv1.Owner:
		return &v.Status
	case *wardenv1.Dataset:
		return &v.Status
	case *wardenv1.Group:
		return &v.Status
	case *wardenv1.Org:
		return &v.Status
	case *wardenv1.Space:
		return &v.Status
	case *wardenv1.StoragePolicy:
		return &v.Status
	}
	panic(fmt.Sprintf("clusterpolicy: no status on %T", o))
}

func accepted() (string, string) { return wardenv1.ReasonAccepted, "in force" }

func invalid(err error) (string, string) { return wardenv1.ReasonInvalid, err.Error() }

func (st *Statuses) fileView() *view {
	v, _ := st.Source.View().(*view)
	if v == nil {
		v = &view{s: st.Source}
	}
	return v
}

func (st *Statuses) owner(_ context.Context, o client.Object) (string, string) {
	ow := o.(*wardenv1.Owner)
	out, err := ownerOf(ow)
	if err != nil {
		return invalid(err)
	}
	if f := st.fileView().file; f != nil {
		if _, ok := f.Owner(out.ServiceAccount); ok {
			return wardenv1.ReasonConflict, "the policy file defines this owner; the file wins"
		}
	}
	return accepted()
}

func (st *Statuses) group(_ context.Context, o client.Object) (string, string) {
	g := o.(*wardenv1.Group)
	if _, err := groupOf(g); err != nil {
		return invalid(err)
	}
	if _, ok := st.fileView().fileGroup(g.Name); ok {
		return wardenv1.ReasonConflict, "the policy file defines this group; the file wins"
	}
	return accepted()
}

func (st *Statuses) org(_ context.Context, o client.Object) (string, string) {
	org := o.(*wardenv1.Org)
	if _, _, err := orgOf(org); err != nil {
		return invalid(err)
	}
	if _, err := orgStorageOf(org); err != nil {
		return invalid(err)
	}
	if f := st.fileView().file; f != nil {
		for _, fo := range f.Orgs {
			if fo.Name == org.Name {
				return wardenv1.ReasonConflict, "the policy file defines this org; the file wins"
			}
		}
	}
	if st.fileView().Project() == "" {
		return invalid(errors.New("no GCP project is set (the policy file's gcp.project, or the webhook's --gcp-project)"))
	}
	return accepted()
}

func (st *Statuses) dataset(ctx context.Context, o client.Object) (string, string) {
	d := o.(*wardenv1.Dataset)
	v := st.fileView()
	if _, err := datasetOf(d); err != nil {
		return invalid(err)
	}
	if v.fileDefines(d.Name) {
		return wardenv1.ReasonConflict, "the policy file defines this dataset id; the file wins"
	}
	if _, err := v.resolve(d); err != nil {
		if errors.Is(err, errNoRoot) {
			return wardenv1.ReasonNoSnapshotRoot, err.Error()
		}
		if nc := (*notClaimedError)(nil); errors.As(err, &nc) {
			return wardenv1.ReasonIDNotClaimed, err.Error()
		}
		return invalid(err)
	}
	// Only acceptable Datasets compete for an id (datasetHolder).
	if w, _, ok := v.datasetHolder(d.Name); ok && w.Namespace != d.Namespace {
		return wardenv1.ReasonConflict, fmt.Sprintf("Dataset %s/%s holds this id (the oldest acceptable one); dataset ids are unique in the cluster", w.Namespace, w.Name)
	}
	return accepted()
}

// datasetsIn maps a namespace to its Datasets.
func (st *Statuses) datasetsIn(ctx context.Context, o client.Object) []reconcile.Request {
	var list wardenv1.DatasetList
	if err := st.Source.Reader.List(ctx, &list, client.InNamespace(o.GetName())); err != nil {
		return nil
	}
	return requests(list.Items)
}

// sameID maps a Dataset to the others of its id.
func (st *Statuses) sameID(ctx context.Context, o client.Object) []reconcile.Request {
	var list wardenv1.DatasetList
	if err := st.Source.Reader.List(ctx, &list, client.MatchingFields{indexID: idBucket(o.GetName())}); err != nil {
		return nil
	}
	var out []reconcile.Request
	for _, d := range named(pointers(list.Items), o.GetName()) {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(d)})
	}
	return out
}

func requests(items []wardenv1.Dataset) []reconcile.Request {
	out := make([]reconcile.Request, len(items))
	for i := range items {
		out[i] = reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&items[i])}
	}
	return out
}

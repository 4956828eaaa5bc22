package clusterpolicy

import (
	"context"
	"errors"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	wardenv1 "github.com/warden-dev/warden/pkg/apis/warden/v1alpha1"
)

func (st *Statuses) space(_ context.Context, o client.Object) (string, string) {
	_, err := st.fileView().spaceStanding(o.(*wardenv1.Space))
	switch {
	case err == nil:
		return accepted()
	case errors.Is(err, errSpaceConflict):
		return wardenv1.ReasonConflict, err.Error()
	case errors.Is(err, errUnknownOrg):
		return wardenv1.ReasonUnknownOrg, err.Error()
	}
	return invalid(err)
}

func (st *Statuses) storagePolicy(_ context.Context, o client.Object) (string, string) {
	if _, err := storagePolicyOf(o.(*wardenv1.StoragePolicy)); err != nil {
		return invalid(err)
	}
	return accepted()
}

// spacesOfOrg maps an Org to the Spaces that name it.
func (st *Statuses) spacesOfOrg(ctx context.Context, o client.Object) []reconcile.Request {
	var list wardenv1.SpaceList
	if err := st.Source.Reader.List(ctx, &list); err != nil {
		return nil
	}
	var out []reconcile.Request
	for i := range list.Items {
		if list.Items[i].Spec.Org == o.GetName() {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
		}
	}
	return out
}

// sameBucket maps a Space to the other Spaces of its bucket (a deleted or moved Space can put
// another in force).
func (st *Statuses) sameBucket(ctx context.Context, o client.Object) []reconcile.Request {
	var list wardenv1.SpaceList
	if err := st.Source.Reader.List(ctx, &list, client.MatchingFields{indexBucket: o.(*wardenv1.Space).Spec.Bucket}); err != nil {
		return nil
	}
	out := make([]reconcile.Request, len(list.Items))
	for i := range list.Items {
		out[i] = reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])}
	}
	return out
}

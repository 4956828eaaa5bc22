package clusterpolicy

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wardenv1 "github.com/warden-dev/warden/pkg/apis/warden/v1alpha1"
	"github.com/warden-dev/warden/pkg/contract"
)

var (
	namespaceGVK = corev1.SchemeGroupVersion.WithKind("Namespace")
	errNoRoot    = fmt.Errorf("the namespace has no %s annotation: a cluster admin decides where its datasets may live", contract.AnnotationSnapshotRoot)
)

// Resource is the API resource of a kind (for RBAC and messages).
func Resource(kind string) schema.GroupResource {
	return wardenv1.GroupVersion.WithResource(kind).GroupResource()
}

// Resources names the API resources of Warden's kinds, as the CRDs serve them.
func Resources() []string {
	return []string{"owners", "datasets", "groups", "orgs", "spaces", "storagepolicies"}
}

// AddToScheme registers Warden's API types.
func AddToScheme(s *runtime.Scheme) error { return wardenv1.AddToScheme(s) }

// CacheOptions keep Warden's objects as stored (never copied on read: the view only reads),
// reduced by Transform to what Warden reads.
func CacheOptions(byObject map[client.Object]cache.ByObject) map[client.Object]cache.ByObject {
	if byObject == nil {
		byObject = map[client.Object]cache.ByObject{}
	}
	for _, o := range []client.Object{&wardenv1.Owner{}, &wardenv1.Dataset{}, &wardenv1.Group{}, &wardenv1.Org{}, &wardenv1.Space{}, &wardenv1.StoragePolicy{}} {
		byObject[o] = cache.ByObject{UnsafeDisableDeepCopy: ptr.To(true), Transform: Transform}
	}
	return byObject
}

// Indexer is the part of a manager that registers field indexes.
type Indexer interface {
	IndexField(ctx context.Context, obj client.Object, field string, extract client.IndexerFunc) error
}

// Register adds the field indexes the view looks up with. Invalid objects are not indexed, so
// they never match a reader, a member or a user. Every lookup is cluster-wide.
// A cache with informers keeps the readers itself (readerIndex, from Attach); without (a fake
// client in tests) they are a field index like the others.
func Register(ctx context.Context, idx Indexer) error {
	var readers error
	if _, informers := idx.(informerGetter); !informers {
		readers = idx.IndexField(ctx, &wardenv1.Dataset{}, indexReader, func(o client.Object) []string {
			return members(readersOf(o.(*wardenv1.Dataset)))
		})
	}
	idx = clusterWide(idx)
	return errors.Join(readers,
		idx.IndexField(ctx, &wardenv1.Dataset{}, indexID, func(o client.Object) []string {
			return []string{idBucket(o.GetName())}
		}),
		idx.IndexField(ctx, &wardenv1.Org{}, indexMember, func(o client.Object) []string {
			org := o.(*wardenv1.Org)
			if _, _, err := orgOf(org); err != nil {
				return nil
			}
			out := make([]string, len(org.Spec.Members))
			for i, m := range org.Spec.Members {
				out[i] = string(m)
			}
			return out
		}),
		idx.IndexField(ctx, &wardenv1.Space{}, indexBucket, func(o client.Object) []string {
			if _, err := spaceOf(o.(*wardenv1.Space)); err != nil {
				return nil
			}
			return []string{o.(*wardenv1.Space).Spec.Bucket}
		}),
		idx.IndexField(ctx, &wardenv1.Group{}, indexUser, func(o client.Object) []string {
			g := o.(*wardenv1.Group)
			users, err := groupOf(g)
			if err != nil {
				return nil
			}
			return users
		}),
	)
}

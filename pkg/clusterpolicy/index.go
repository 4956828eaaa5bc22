package clusterpolicy

import (
	"context"
	"fmt"

	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// controller-runtime's IndexField keys a namespaced object's value twice, "NAMESPACE/VALUE" for
// lookups in one namespace and "__all_namespaces/VALUE" for lookups across them. Warden only
// looks up across namespaces, and the per-namespace copy cost as much memory as the objects'
// readers themselves (client-go keeps a set of object keys per value, an entry per object and
// value): at 50,000 Datasets of 20 readers, a million entries nobody read. So on a real cache
// the indexes are added to the informers directly, with the cluster-wide key alone, under the
// name controller-runtime gives them: the view's indexer reads and the cache's List with
// MatchingFields (no InNamespace) find exactly what they found before. A List with InNamespace
// and MatchingFields would find nothing; nothing asks for one.

type informerGetter interface {
	GetInformer(ctx context.Context, obj client.Object, opts ...cache.InformerGetOption) (cache.Informer, error)
}

// clusterWide is idx, indexing cluster-wide keys only when idx is a cache with informers (a
// fake client's indexer, in tests, is used as it is).
func clusterWide(idx Indexer) Indexer {
	if g, ok := idx.(informerGetter); ok {
		return clusterIndexer{g}
	}
	return idx
}

type clusterIndexer struct{ c informerGetter }

func (c clusterIndexer) IndexField(ctx context.Context, obj client.Object, field string, extract client.IndexerFunc) error {
	inf, err := c.c.GetInformer(ctx, obj, cache.BlockUntilSynced(false))
	if err != nil {
		return err
	}
	return inf.AddIndexers(toolscache.Indexers{"field:" + field: clusterKeys(extract)})
}

// clusterKeys are extract's values as controller-runtime's cluster-wide keys.
func clusterKeys(extract client.IndexerFunc) toolscache.IndexFunc {
	return func(o any) ([]string, error) {
		obj, ok := o.(client.Object)
		if !ok {
			return nil, fmt.Errorf("clusterpolicy: indexing %T, not an object", o)
		}
		vals := extract(obj)
		if len(vals) == 0 {
			return nil, nil
		}
		out := make([]string, len(vals))
		for i, v := range vals {
			out[i] = allNamespaces + v
		}
		return out, nil
	}
}

package clusterpolicy

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wardenv1 "github.com/warden-dev/warden/pkg/apis/warden/v1alpha1"
)

// BenchmarkDatasetMemory is the cache's memory per Dataset without an API server: the Datasets
// of make bench-policy (20 readers out of 2 per owner), decoded from JSON as a watch delivers
// them, through the transform into a client-go indexer with Warden's indexes, as the informer
// keeps them. It reports heap bytes per Dataset (after GC), with the indexes as controller-
// runtime's IndexField would key them (namespaced and cluster-wide, the readers included) and
// as Register and Attach keep them.
func BenchmarkDatasetMemory(b *testing.B) {
	const owners, datasets = 2000, 10000
	raw := make([][]byte, datasets)
	for i := range raw {
		raw[i] = benchDataset(i, owners)
	}
	for _, mode := range []struct {
		name      string
		transform toolscache.TransformFunc
		doubled   bool
	}{
		{"strip-managed-fields,doubled-keys", cache.TransformStripManagedFields(), true},
		{"transform,doubled-keys", Transform, true},
		{"transform,cluster-keys,reader-lists", Transform, false},
	} {
		b.Run(mode.name, func(b *testing.B) {
			for range b.N {
				var keep any
				perObject := heapDelta(func() {
					keep = fill(b, raw, mode.transform, mode.doubled)
				}) / datasets
				b.ReportMetric(perObject, "heap-B/dataset")
				if path := os.Getenv("DATASET_HEAPPROFILE"); path != "" {
					writeProfile(b, path+"."+mode.name)
				}
				runtime.KeepAlive(keep)
			}
		})
	}
}

func benchDataset(i, owners int) []byte {
	var readers []wardenv1.Member
	seen := map[wardenv1.Member]bool{}
	for r := range 10 {
		for _, m := range []string{fmt.Sprintf("serviceAccount:scale/svc-%05d", (i*7+r*977)%owners), fmt.Sprintf("user:user-%05d", (i*13+r*331)%owners)} {
			if !seen[wardenv1.Member(m)] {
				seen[wardenv1.Member(m)] = true
				readers = append(readers, wardenv1.Member(m))
			}
		}
	}
	d := wardenv1.Dataset{
		TypeMeta: metav1.TypeMeta{APIVersion: "warden.dev/v1alpha1", Kind: "Dataset"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "scale-data", Name: fmt.Sprintf("ds-%06d", i), UID: types.UID(fmt.Sprintf("6f1c2a4e-0000-4000-8000-%012d", i)),
			ResourceVersion: fmt.Sprint(100000 + i), Generation: 1, CreationTimestamp: metav1.Now(),
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "bench", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "warden.dev/v1alpha1"}}},
		Spec: wardenv1.DatasetSpec{Snapshot: wardenv1.SnapshotDir(fmt.Sprintf("d/%06d", i)), Readers: readers},
		Status: wardenv1.Status{ObservedGeneration: 1, Conditions: []metav1.Condition{{Type: wardenv1.ConditionAccepted, Status: metav1.ConditionTrue,
			Reason: wardenv1.ReasonAccepted, Message: "in force", ObservedGeneration: 1, LastTransitionTime: metav1.Now()}}},
	}
	out, err := json.Marshal(d)
	if err != nil {
		panic(err)
	}
	return out
}

// fill is an informer's store after the initial sync: the namespace index controller-runtime
// adds and Warden's indexes (the readers as a field index when doubled, else readerIndex), every
// object decoded on its own and transformed.
func fill(b *testing.B, raw [][]byte, transform toolscache.TransformFunc, doubled bool) any {
	readers := &readerIndex{}
	ix := toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, toolscache.Indexers{toolscache.NamespaceIndex: toolscache.MetaNamespaceIndexFunc})
	var reg Indexer = informers{ix}
	if doubled {
		reg = doubledKeys{ix}
	}
	if err := Register(context.Background(), reg); err != nil {
		b.Fatal(err)
	}
	for _, r := range raw {
		d := &wardenv1.Dataset{}
		if err := json.Unmarshal(r, d); err != nil {
			b.Fatal(err)
		}
		o, err := transform(d)
		if err != nil {
			b.Fatal(err)
		}
		if err := ix.Add(o); err != nil {
			b.Fatal(err)
		}
		if !doubled {
			readers.update(nil, o.(*wardenv1.Dataset))
		}
	}
	return []any{ix, readers}
}

// writeProfile writes the heap profile (go tool pprof -sample_index=inuse_space).
func writeProfile(b *testing.B, path string) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		b.Fatal(err)
	}
}

func heapDelta(f func()) float64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.GC()
	runtime.ReadMemStats(&after)
	return float64(after.HeapAlloc) - float64(before.HeapAlloc)
}

// informers hands Register the Dataset indexer as an informer's (other kinds are dropped).
type informers struct{ ix toolscache.Indexer }

func (i informers) GetInformer(_ context.Context, obj client.Object, _ ...cache.InformerGetOption) (cache.Informer, error) {
	if _, ok := obj.(*wardenv1.Dataset); !ok {
		return indexOnly{ix: toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, toolscache.Indexers{})}, nil
	}
	return indexOnly{ix: i.ix}, nil
}

func (informers) IndexField(context.Context, client.Object, string, client.IndexerFunc) error {
	panic("Register indexes through the informers")
}

type indexOnly struct {
	cache.Informer
	ix toolscache.Indexer
}

func (i indexOnly) AddIndexers(ix toolscache.Indexers) error { return i.ix.AddIndexers(ix) }

// doubledKeys indexes as controller-runtime's IndexField does: each value under the object's
// namespace and across namespaces.
type doubledKeys struct{ ix toolscache.Indexer }

func (d doubledKeys) IndexField(_ context.Context, obj client.Object, field string, extract client.IndexerFunc) error {
	if _, ok := obj.(*wardenv1.Dataset); !ok {
		return nil
	}
	return d.ix.AddIndexers(toolscache.Indexers{"field:" + field: func(o any) ([]string, error) {
		obj := o.(client.Object)
		var out []string
		for _, v := range extract(obj) {
			out = append(out, obj.GetNamespace()+"/"+v, allNamespaces+v)
		}
		return out, nil
	}})
}

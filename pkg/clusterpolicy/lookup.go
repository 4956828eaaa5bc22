package clusterpolicy

import (
	"context"
	"fmt"
	"sync/atomic"

	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wardenv1 "github.com/warden-dev/warden/pkg/apis/warden/v1alpha1"
)

// A listing looks up about a hundred things; through the cache's List each lookup copies its
// results into a list by reflection, which was most of a listing's time at 50,000 datasets.
// Once the informers exist, the view reads their indexers directly: the same field indexes
// (registered by Register through controller-runtime, which names them "field:NAME" with
// cluster-wide keys "__all_namespaces/VALUE"), returning the cached objects themselves, which the
// view only reads. Without informers (a fake client in tests) it lists through the Reader.

const allNamespaces = "__all_namespaces/"

type indexers struct {
	owners, datasets, groups, orgs, spaces, storagePolicies toolscache.Indexer
}

// Attach starts (or finds) the informers of Warden's kinds and reads their indexers from then on.
func (s *Source) Attach(ctx context.Context, c cache.Cache) error {
	get := func(o client.Object) (toolscache.Indexer, error) {
		inf, err := c.GetInformer(ctx, o)
		if err != nil {
			return nil, fmt.Errorf("watching %T (are Warden's CRDs installed? kubectl apply -k manifests/): %w", o, err)
		}
		ix, ok := inf.(interface{ GetIndexer() toolscache.Indexer })
		if !ok {
			return nil, nil // reads go through the Reader
		}
		return ix.GetIndexer(), nil
	}
	var ix indexers
	var err error
	if ix.owners, err = get(&wardenv1.Owner{}); err != nil {
		return err
	}
	if ix.datasets, err = get(&wardenv1.Dataset{}); err != nil {
		return err
	}
	if err := s.indexReaders(ctx, c); err != nil {
		return err
	}
	if ix.groups, err = get(&wardenv1.Group{}); err != nil {
		return err
	}
	if ix.orgs, err = get(&wardenv1.Org{}); err != nil {
		return err
	}
	if ix.spaces, err = get(&wardenv1.Space{}); err != nil {
		return err
	}
	if ix.storagePolicies, err = get(&wardenv1.StoragePolicy{}); err != nil {
		return err
	}
	if ix.owners != nil && ix.datasets != nil && ix.groups != nil && ix.orgs != nil && ix.spaces != nil && ix.storagePolicies != nil {
		s.idx.Store(&ix)
	}
	return nil
}

type idxPointer = atomic.Pointer[indexers]

// datasetsBy are the Datasets of an index value; the caller only reads the list.
func (s *Source) datasetsBy(field, key string) []*wardenv1.Dataset {
	if ix := s.idx.Load(); ix != nil {
		if field == indexReader {
			return s.readers.lookup(key)
		}
		return byIndex[*wardenv1.Dataset](ix.datasets, field, key)
	}
	var l wardenv1.DatasetList
	if err := s.Reader.List(ctx(), &l, client.MatchingFields{field: key}); err != nil {
		return nil
	}
	return pointers(l.Items)
}

func (s *Source) allDatasets() []*wardenv1.Dataset {
	if ix := s.idx.Load(); ix != nil {
		var out []*wardenv1.Dataset
		for _, o := range ix.datasets.List() {
			if d, ok := o.(*wardenv1.Dataset); ok {
				out = append(out, d)
			}
		}
		return out
	}
	var l wardenv1.DatasetList
	if err := s.Reader.List(ctx(), &l); err != nil {
		return nil
	}
	return pointers(l.Items)
}

func (s *Source) groupsBy(field, key string) []*wardenv1.Group {
	if ix := s.idx.Load(); ix != nil {
		return byIndex[*wardenv1.Group](ix.groups, field, key)
	}
	var l wardenv1.GroupList
	if err := s.Reader.List(ctx(), &l, client.MatchingFields{field: key}); err != nil {
		return nil
	}
	return pointers(l.Items)
}

func (s *Source) orgsBy(field, key string) []*wardenv1.Org {
	if ix := s.idx.Load(); ix != nil {
		return byIndex[*wardenv1.Org](ix.orgs, field, key)
	}
	var l wardenv1.OrgList
	if err := s.Reader.List(ctx(), &l, client.MatchingFields{field: key}); err != nil {
		return nil
	}
	return pointers(l.Items)
}

func (s *Source) owner(name string) *wardenv1.Owner {
	if ix := s.idx.Load(); ix != nil {
		return byKey[*wardenv1.Owner](ix.owners, name)
	}
	var o wardenv1.Owner
	if err := s.Reader.Get(ctx(), client.ObjectKey{Name: name}, &o); err != nil {
		return nil
	}
	return &o
}

func (s *Source) org(name string) *wardenv1.Org {
	if ix := s.idx.Load(); ix != nil {
		return byKey[*wardenv1.Org](ix.orgs, name)
	}
	var o wardenv1.Org
	if err := s.Reader.Get(ctx(), client.ObjectKey{Name: name}, &o); err != nil {
		return nil
	}
	return &o
}

func (s *Source) spacesBy(field, key string) []*wardenv1.Space {
	if ix := s.idx.Load(); ix != nil {
		return byIndex[*wardenv1.Space](ix.spaces, field, key)
	}
	var l wardenv1.SpaceList
	if err := s.Reader.List(ctx(), &l, client.MatchingFields{field: key}); err != nil {
		return nil
	}
	return pointers(l.Items)
}

func (s *Source) space(name string) *wardenv1.Space {
	if ix := s.idx.Load(); ix != nil {
		return byKey[*wardenv1.Space](ix.spaces, name)
	}
	var o wardenv1.Space
	if err := s.Reader.Get(ctx(), client.ObjectKey{Name: name}, &o); err != nil {
		return nil
	}
	return &o
}

func (s *Source) spaceObjects() []*wardenv1.Space {
	if ix := s.idx.Load(); ix != nil {
		var out []*wardenv1.Space
		for _, o := range ix.spaces.List() {
			if p, ok := o.(*wardenv1.Space); ok {
				out = append(out, p)
			}
		}
		return out
	}
	var l wardenv1.SpaceList
	if err := s.Reader.List(ctx(), &l); err != nil {
		return nil
	}
	return pointers(l.Items)
}

func (s *Source) storagePolicies() []*wardenv1.StoragePolicy {
	if ix := s.idx.Load(); ix != nil {
		var out []*wardenv1.StoragePolicy
		for _, o := range ix.storagePolicies.List() {
			if p, ok := o.(*wardenv1.StoragePolicy); ok {
				out = append(out, p)
			}
		}
		return out
	}
	var l wardenv1.StoragePolicyList
	if err := s.Reader.List(ctx(), &l); err != nil {
		return nil
	}
	return pointers(l.Items)
}

func byIndex[T any](ix toolscache.Indexer, field, key string) []T {
	objs, err := ix.ByIndex("field:"+field, allNamespaces+key)
	if err != nil {
		return nil
	}
	out := make([]T, 0, len(objs))
	for _, o := range objs {
		if t, ok := o.(T); ok {
			out = append(out, t)
		}
	}
	return out
}

func byKey[T any](ix toolscache.Indexer, key string) T {
	var zero T
	o, ok, err := ix.GetByKey(key)
	if err != nil || !ok {
		return zero
	}
	t, _ := o.(T)
	return t
}

func pointers[T any](items []T) []*T {
	out := make([]*T, len(items))
	for i := range items {
		out[i] = &items[i]
	}
	return out
}

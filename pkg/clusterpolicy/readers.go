package clusterpolicy

import (
	"context"
	"fmt"
	"sync"

	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	wardenv1 "github.com/warden-dev/warden/pkg/apis/warden/v1alpha1"
)

// readerIndex maps each reader, as written ("user:ann", "serviceAccount:ns/sa"), to the valid
// Datasets that list it. It replaces a client-go field index on the informer: that index keeps a
// set of object keys per reader, ~40 bytes an entry, and with a million (Dataset, reader) pairs
// at 50,000 Datasets it was the largest part of the cache; a list of pointers costs ~11.
//
// The informer's event handler keeps it (one goroutine); the view reads it. It trails the
// informer's store by the handler's delivery, as any informer handler does: a lookup only
// proposes candidates, and the view decides each from the object in force for its id (the id
// index, on the store), so a stale entry never grants and a new reader shows up as soon as the
// handler ran. Lists are appended to in place (a reader holding an older, shorter list never
// sees the new element) and replaced whole when an element goes, so a lookup returns the
// current list without copying it, to be read only.
type readerIndex struct {
	mu sync.RWMutex
	by map[string][]*wardenv1.Dataset
}

func (x *readerIndex) lookup(reader string) []*wardenv1.Dataset {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.by[reader]
}

// readersOf are the readers d is indexed under: none when d is invalid, so that an invalid
// object never matches a reader (as Register's indexes).
func readersOf(d *wardenv1.Dataset) []wardenv1.Member {
	if d == nil {
		return nil
	}
	if _, err := datasetOf(d); err != nil {
		return nil
	}
	return d.Spec.Readers
}

// update replaces old (nil: none) with new (nil: deleted) in the lists of their readers.
func (x *readerIndex) update(old, new *wardenv1.Dataset) {
	oldReaders, newReaders := readersOf(old), readersOf(new)
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.by == nil {
		x.by = map[string][]*wardenv1.Dataset{}
	}
	for _, r := range oldReaders {
		x.remove(string(r), old)
	}
	for _, r := range newReaders {
		x.by[string(r)] = append(x.by[string(r)], new)
	}
}

// remove drops d (by namespace and name: the cache hands a new object on every update) from
// reader's list, into a new list.
func (x *readerIndex) remove(reader string, d *wardenv1.Dataset) {
	cur := x.by[reader]
	out := make([]*wardenv1.Dataset, 0, len(cur))
	for _, o := range cur {
		if o.Name != d.Name || o.Namespace != d.Namespace {
			out = append(out, o)
		}
	}
	if len(out) == 0 {
		delete(x.by, reader)
		return
	}
	x.by[reader] = out
}

// handler keeps x from the Dataset informer's events.
func (x *readerIndex) handler() toolscache.ResourceEventHandler {
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { x.update(nil, asDataset(o)) },
		UpdateFunc: func(old, o any) { x.update(asDataset(old), asDataset(o)) },
		DeleteFunc: func(o any) { x.update(asDataset(o), nil) },
	}
}

func asDataset(o any) *wardenv1.Dataset {
	if t, ok := o.(toolscache.DeletedFinalStateUnknown); ok {
		o = t.Obj
	}
	d, _ := o.(*wardenv1.Dataset)
	return d
}

// indexReaders keeps s.readers from the Dataset informer, from its first object on.
func (s *Source) indexReaders(ctx context.Context, c cache.Cache) error {
	inf, err := c.GetInformer(ctx, &wardenv1.Dataset{})
	if err != nil {
		return err
	}
	reg, err := inf.AddEventHandler(s.readers.handler())
	if err != nil {
		return fmt.Errorf("indexing Dataset readers: %w", err)
	}
	s.readersSynced = reg.HasSynced
	return nil
}

// WaitIndexed waits until the reader index holds every Dataset of the cache's initial sync
// (the handler is behind the informer's store): until then a listing would miss datasets.
func (s *Source) WaitIndexed(ctx context.Context) bool {
	if s.readersSynced == nil {
		return true
	}
	return toolscache.WaitForCacheSync(ctx.Done(), s.readersSynced)
}

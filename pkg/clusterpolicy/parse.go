package clusterpolicy

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"

	wardenv1 "github.com/warden-dev/warden/pkg/apis/warden/v1alpha1"
	"github.com/warden-dev/warden/pkg/policy"
)

// parseCache keeps each Dataset checked and parsed once per version: a listing touches dozens of
// datasets, each with up to a thousand readers, and the cache hands out the same stored object
// until it changes. Entries are keyed by UID and resource version; the map is dropped whole when
// it outgrows maxParsed (deleted objects), which costs one re-parse each.
type parseCache struct {
	mu sync.RWMutex
	m  map[types.UID]parsedDataset
}

type parsedDataset struct {
	version string
	d       policy.Dataset
	err     error
}

const maxParsed = 1 << 18

func (c *parseCache) dataset(d *wardenv1.Dataset) (policy.Dataset, error) {
	c.mu.RLock()
	p, ok := c.m[d.UID]
	c.mu.RUnlock()
	if ok && p.version == d.ResourceVersion && d.UID != "" {
		return p.d, p.err
	}
	out, err := datasetOf(d)
	if d.UID == "" {
		return out, err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxParsed {
		c.m = map[types.UID]parsedDataset{}
	}
	c.m[d.UID] = parsedDataset{version: d.ResourceVersion, d: out, err: err}
	c.mu.Unlock()
	return out, err
}

// winner is the Dataset that holds an id: the oldest (then first by namespace) valid one.
func (c *parseCache) winner(items []*wardenv1.Dataset) *wardenv1.Dataset {
	var best *wardenv1.Dataset
	for _, d := range items {
		if !d.DeletionTimestamp.IsZero() {
			continue
		}
		if _, err := c.dataset(d); err != nil {
			continue
		}
		if best == nil || older(d.ObjectMeta, best.ObjectMeta) {
			best = d
		}
	}
	return best
}

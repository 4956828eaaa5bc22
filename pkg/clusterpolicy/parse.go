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
	// root and rooted remember the dataset under the namespace root it was last resolved with.
	root   string
	rooted policy.Dataset
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

// underRoot is rooted(dataset, root), remembered per version and root.
func (c *parseCache) underRoot(d *wardenv1.Dataset, root string) (policy.Dataset, error) {
	out, err := c.dataset(d)
	if err != nil || d.UID == "" {
		if err != nil {
			return out, err
		}
		return rooted(out, root)
	}
	c.mu.RLock()
	p, ok := c.m[d.UID]
	c.mu.RUnlock()
	if ok && p.version == d.ResourceVersion && p.root == root && p.err == nil {
		return p.rooted, nil
	}
	r, err := rooted(out, root)
	if err != nil {
		return r, err
	}
	c.mu.Lock()
	if e, ok := c.m[d.UID]; ok && e.version == d.ResourceVersion {
		e.root, e.rooted = root, r
		c.m[d.UID] = e
	}
	c.mu.Unlock()
	return r, nil
}

// spaceCache keeps each Space checked and parsed once per version: the overlap check reads every
// Space of a bucket at each decision, and a bucket may hold hundreds of spaces.
type spaceCache struct {
	mu sync.RWMutex
	m  map[types.UID]parsedSpace
}

type parsedSpace struct {
	version string
	s       policy.Space
	err     error
}

func (c *spaceCache) space(o *wardenv1.Space) (policy.Space, error) {
	if o.UID == "" {
		return spaceOf(o)
	}
	c.mu.RLock()
	p, ok := c.m[o.UID]
	c.mu.RUnlock()
	if ok && p.version == o.ResourceVersion {
		return p.s, p.err
	}
	out, err := spaceOf(o)
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxParsed {
		c.m = map[types.UID]parsedSpace{}
	}
	c.m[o.UID] = parsedSpace{version: o.ResourceVersion, s: out, err: err}
	c.mu.Unlock()
	return out, err
}

package clusterpolicy

import (
	"strconv"

	wardenv1 "github.com/warden-dev/warden/pkg/apis/warden/v1alpha1"
)

// Nearly every dataset id is held by one Dataset, and client-go's indexer keeps a set of object
// keys per index value: a set of one costs ~200 bytes, more than the Dataset's own strings, so
// at 50,000 Datasets an index by id was ~10 MB of sets of one. The id index files each Dataset
// under one of idBuckets buckets of its name's hash instead (a dozen Datasets each at that
// scale); a lookup reads its id's bucket and keeps the Datasets of that very name. Which
// Dataset holds an id is decided among those alone, as before.
const idBuckets = 4096

var bucketNames = func() (out [idBuckets]string) {
	for i := range out {
		out[i] = strconv.FormatUint(uint64(i), 16)
	}
	return out
}()

// idBucket is the id index's value for id (FNV-1a, which allocates nothing).
func idBucket(id string) string {
	h := uint32(2166136261)
	for i := 0; i < len(id); i++ {
		h ^= uint32(id[i])
		h *= 16777619
	}
	return bucketNames[h%idBuckets]
}

// datasetsNamed are the Datasets named id, in any namespace.
func (s *Source) datasetsNamed(id string) []*wardenv1.Dataset {
	return named(s.datasetsBy(indexID, idBucket(id)), id)
}

// named keeps the Datasets of ds named id (ds is the caller's own slice, reused).
func named(ds []*wardenv1.Dataset, id string) []*wardenv1.Dataset {
	out := ds[:0]
	for _, d := range ds {
		if d.Name == id {
			out = append(out, d)
		}
	}
	return out
}

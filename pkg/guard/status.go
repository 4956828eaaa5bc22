package guard

import (
	"encoding/json"
	"slices"

	"github.com/warden-dev/warden/internal/exactcache"
	"github.com/warden-dev/warden/pkg/contract"
)

// The pods of an owner carry the same status annotation, and decoding it with reflection was
// most of verifying a seal. A decoded status is remembered by its exact text, which decides
// its decoding, and every caller gets its own copy; the seal is still checked for every pod.
// Bounded in entries and in the size of a status, and dropped whole when full.

const (
	maxStatuses   = 256
	maxStatusSize = 4 << 10
)

var statuses = &exactcache.Cache[contract.Status]{MaxEntries: maxStatuses, MaxKey: maxStatusSize}

// parseStatus is json.Unmarshal of a status annotation into a zero Status.
func parseStatus(raw string) (contract.Status, error) {
	if st, ok := statuses.GetString(raw); ok {
		return cloneStatus(st), nil
	}
	var st contract.Status
	if err := json.Unmarshal([]byte(raw), &st); err != nil {
		return st, err
	}
	if len(raw) <= maxStatusSize { // no copy for a status that will not be kept
		statuses.Put(raw, cloneStatus(st))
	}
	return st, nil
}

// cloneStatus copies the lists too (nil stays nil, as decoded).
func cloneStatus(st contract.Status) contract.Status {
	st.Volumes, st.Containers = slices.Clone(st.Volumes), slices.Clone(st.Containers)
	return st
}

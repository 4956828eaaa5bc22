package guard

import (
	"encoding/json"
	"slices"
	"sync"

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

var statuses struct {
	mu sync.Mutex
	m  map[string]contract.Status
}

// parseStatus is json.Unmarshal of a status annotation into a zero Status.
func parseStatus(raw string) (contract.Status, error) {
	if len(raw) <= maxStatusSize {
		statuses.mu.Lock()
		st, ok := statuses.m[raw]
		statuses.mu.Unlock()
		if ok {
			return cloneStatus(st), nil
		}
	}
	var st contract.Status
	if err := json.Unmarshal([]byte(raw), &st); err != nil {
		return st, err
	}
	if len(raw) <= maxStatusSize {
		statuses.mu.Lock()
		if statuses.m == nil || len(statuses.m) >= maxStatuses {
			statuses.m = make(map[string]contract.Status, maxStatuses)
		}
		statuses.m[raw] = cloneStatus(st)
		statuses.mu.Unlock()
	}
	return st, nil
}

// cloneStatus copies the lists too (nil stays nil, as decoded).
func cloneStatus(st contract.Status) contract.Status {
	st.Volumes, st.Containers = slices.Clone(st.Volumes), slices.Clone(st.Containers)
	return st
}

// Package exactcache remembers values by the exact bytes they were decoded from, for the
// admission path, where every pod of an owner carries the same Warden parts and status text.
// The key's bytes decide the value, so a hit is exactly what decoding would give. An attacker
// can fill it with forgeries, so it is bounded in entries and in key size, and dropped whole
// when full: churn costs only decoding as if there were no cache.
package exactcache

import "sync"

// Cache maps keys of at most MaxKey bytes to values, holding at most MaxEntries.
type Cache[V any] struct {
	MaxEntries, MaxKey int

	mu sync.Mutex
	m  map[string]V
}

// Get is the value remembered for key (never one for a key over MaxKey).
func (c *Cache[V]) Get(key []byte) (V, bool) {
	var v V
	if len(key) > c.MaxKey {
		return v, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[string(key)] // indexing with the conversion does not copy the key
	return v, ok
}

// GetString is Get for a key held as a string.
func (c *Cache[V]) GetString(key string) (V, bool) {
	var v V
	if len(key) > c.MaxKey {
		return v, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[key]
	return v, ok
}

// Put remembers v for key, unless key is over MaxKey; a full cache is emptied first.
func (c *Cache[V]) Put(key string, v V) {
	if len(key) > c.MaxKey {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= c.MaxEntries {
		c.m = make(map[string]V, c.MaxEntries)
	}
	c.m[key] = v
}

// Len is the number of values remembered.
func (c *Cache[V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

package grants

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"
)

// Cached remembers a Source's answers for TTL, and keeps serving an answer for up to StaleFor
// after that when the source is unavailable: a broker restart must not fail every staging in
// every pod, but a revoked grant must not live on for long either. Errors other than
// ErrUnavailable (and answers that say no) are never served stale.
type Cached struct {
	Source   Source
	TTL      time.Duration
	StaleFor time.Duration
	Now      func() time.Time

	mu      sync.Mutex
	entries map[string]cacheEntry
}

type cacheEntry struct {
	at       time.Time
	decision Decision
	list     []Dataset
}

// maxCacheEntries bounds memory: callers are arbitrary strings chosen by app code.
const maxCacheEntries = 10000

func (c *Cached) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func key(kind, owner string, caller Caller, dataset string) string {
	return kind + "\x00" + owner + "\x00" + caller.ServiceAccount + "\x00" + caller.User + "\x00" + strings.Join(caller.Groups, ",") + "\x00" + dataset
}

func (c *Cached) lookup(k string) (cacheEntry, time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	return e, c.now().Sub(e.at), ok
}

func (c *Cached) store(k string, e cacheEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || len(c.entries) >= maxCacheEntries {
		c.entries = map[string]cacheEntry{}
	}
	c.entries[k] = e
}

// Check implements Source.
func (c *Cached) Check(ctx context.Context, owner string, caller Caller, dataset string) (Decision, error) {
	k := key("check", owner, caller, dataset)
	e, age, ok := c.lookup(k)
	if ok && age < c.TTL {
		return e.decision, nil
	}
	d, err := c.Source.Check(ctx, owner, caller, dataset)
	if err == nil {
		c.store(k, cacheEntry{at: c.now(), decision: d})
		return d, nil
	}
	if errors.Is(err, ErrUnavailable) && ok && age < c.TTL+c.StaleFor && e.decision.Allowed() {
		return e.decision, nil
	}
	return d, err
}

// List implements Source.
func (c *Cached) List(ctx context.Context, owner string, caller Caller) ([]Dataset, error) {
	k := key("list", owner, caller, "")
	e, age, ok := c.lookup(k)
	if ok && age < c.TTL {
		return e.list, nil
	}
	l, err := c.Source.List(ctx, owner, caller)
	if err == nil {
		c.store(k, cacheEntry{at: c.now(), list: l})
		return l, nil
	}
	if errors.Is(err, ErrUnavailable) && ok && age < c.TTL+c.StaleFor {
		return e.list, nil
	}
	return l, err
}

package cloudstorage

import (
	"context"
	"sync"
	"time"
)

// cache holds one credential per Target, minted once however many ask at the same time
// (one flight per Target), and never an error: a failed mint leaves nothing behind, so the next
// request tries again.
type cache struct {
	mu sync.Mutex
	m  map[Target]*flight
}

type flight struct {
	done chan struct{}
	tok  token
	err  error
}

// token is a minted access token and when it expires.
type token struct {
	value  string
	expiry time.Time
}

// get returns a cached token with more than buffer left, or mints one. It reports whether the
// token came from the cache.
func (c *cache) get(ctx context.Context, t Target, now time.Time, buffer time.Duration, mint func(context.Context) (token, error)) (token, bool, error) {
	c.mu.Lock()
	f, ok := c.m[t]
	if ok {
		select {
		case <-f.done:
			if f.err == nil && f.tok.expiry.Sub(now) > buffer {
				c.mu.Unlock()
				return f.tok, true, nil
			}
			ok = false // expiring, or a failure another caller has not removed yet
		default:
		}
	}
	if !ok {
		c.prune(now, buffer)
		f = &flight{done: make(chan struct{})}
		c.m[t] = f
		c.mu.Unlock()
		// The mint runs detached from the first caller's cancellation: the others waiting on it
		// (and the cache) still want the token. IAM and STS calls carry their own timeouts.
		f.tok, f.err = mint(context.WithoutCancel(ctx))
		close(f.done)
		if f.err != nil {
			c.mu.Lock()
			if c.m[t] == f {
				delete(c.m, t)
			}
			c.mu.Unlock()
		}
		return f.tok, false, f.err
	}
	c.mu.Unlock()
	select {
	case <-f.done:
	case <-ctx.Done():
		return token{}, false, ctx.Err()
	}
	if f.err != nil {
		return token{}, false, f.err
	}
	// Joined a flight: a fresh token, not a cached one.
	return f.tok, false, nil
}

// prune drops tokens past use (the map is keyed by Target, which policy edits change).
func (c *cache) prune(now time.Time, buffer time.Duration) {
	for t, f := range c.m {
		select {
		case <-f.done:
			if f.err != nil || f.tok.expiry.Sub(now) <= buffer {
				delete(c.m, t)
			}
		default:
		}
	}
}

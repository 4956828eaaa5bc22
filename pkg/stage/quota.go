package stage

import "fmt"

// reservation is quota held for a copy in progress. A copy that fails gives it back (cancel); a
// published copy keeps it (keep) until it is deleted or expires, which subtract its size.
type reservation struct {
	s    *Stager
	n    int64
	done bool
}

// reserve holds n bytes of the owner's quota, or refuses with ErrQuota.
func (s *Stager) reserve(n int64) (*reservation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg.QuotaBytes > 0 && s.usage+n > s.cfg.QuotaBytes {
		return nil, fmt.Errorf("%w: %d bytes staged, %d more would exceed the owner's quota of %d bytes; delete staged copies or wait for them to expire", ErrQuota, s.usage, n, s.cfg.QuotaBytes)
	}
	s.usage += n
	return &reservation{s: s, n: n}, nil
}

// keep hands the bytes over to the published copy.
func (r *reservation) keep() { r.done = true }

// cancel gives the bytes back unless they were kept; it is safe to defer.
func (r *reservation) cancel() {
	if r.done {
		return
	}
	r.done = true
	r.s.mu.Lock()
	r.s.usage -= r.n
	r.s.mu.Unlock()
}

// Usage reports staged bytes and copies.
func (s *Stager) Usage() (bytes int64, files int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.usage, len(s.files)
}

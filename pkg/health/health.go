// Package health serves /healthz and /readyz with named checks. A check can be degraded: the
// component still serves (so it stays ready) but something needs an operator, and /readyz says
// what. Kubernetes only reads the status code; people read the body.
package health

import (
	"fmt"
	"net/http"
	"sync"
)

// State of one check.
type State int

const (
	OK State = iota
	// Degraded still counts as ready: e.g. a broken policy edit while the last good policy serves.
	Degraded
	// Failing makes /readyz answer 503.
	Failing
)

func (s State) String() string {
	return [...]string{"ok", "degraded", "failing"}[s]
}

// Check reports the state of one dependency with a human-readable detail.
type Check func() (State, string)

// Checks is an ordered set of named readiness checks.
type Checks struct {
	mu    sync.RWMutex
	names []string
	fns   map[string]Check
}

// Add registers a check; the order of Add is the order in the /readyz body.
func (c *Checks) Add(name string, fn Check) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fns == nil {
		c.fns = map[string]Check{}
	}
	if _, dup := c.fns[name]; !dup {
		c.names = append(c.names, name)
	}
	c.fns[name] = fn
}

// Ready runs all checks: ready unless one fails; the lines describe every check.
func (c *Checks) Ready() (bool, []string) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	ready := true
	lines := make([]string, 0, len(c.names))
	for _, n := range c.names {
		st, detail := c.fns[n]()
		if st == Failing {
			ready = false
		}
		lines = append(lines, fmt.Sprintf("[%s] %s: %s", st, n, detail))
	}
	return ready, lines
}

// Readyz serves the checks: 200 when ready, 503 when not, one line per check either way.
func (c *Checks) Readyz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		ready, lines := c.Ready()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if !ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		for _, l := range lines {
			fmt.Fprintln(w, l)
		}
		if ready {
			fmt.Fprintln(w, "ready")
		} else {
			fmt.Fprintln(w, "not ready")
		}
	})
}

// Healthz is liveness: the process answers. Dependencies belong in readiness, so a dependency
// outage never makes the kubelet restart a healthy process.
func Healthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
}

// Package serve runs an http.Server on a bound listener until a context ends, then shuts it
// down gracefully: the one lifecycle every Warden listener shares.
package serve

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"
)

// ShutdownGrace is how long in-flight requests get once the context ends.
const ShutdownGrace = 5 * time.Second

// Until serves srv on ln and returns when ctx ends (nil) or serving fails (the error). After ctx
// ends it returns only once in-flight requests are answered (or ShutdownGrace is over): Serve
// returns as soon as shutdown begins, and a process that exits then would cut them off.
func Until(ctx context.Context, srv *http.Server, ln net.Listener) error {
	stopped := make(chan struct{})
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		select {
		case <-ctx.Done():
		case <-stopped:
			return
		}
		sctx, cancel := context.WithTimeout(context.Background(), ShutdownGrace)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	err := srv.Serve(ln)
	close(stopped)
	<-drained
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

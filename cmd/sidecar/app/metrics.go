package app

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/warden-dev/warden/internal/serve"
	"github.com/warden-dev/warden/pkg/sidecarapi"
)

// metricsServer serves GET /metrics and answers 404 to everything else: the API, which trusts
// whoever reaches it, is never on this listener, which the whole cluster network may reach.
type metricsServer struct {
	ln net.Listener
	hs *http.Server
}

// run serves until ctx ends.
func (m *metricsServer) run(ctx context.Context) error { return serve.Until(ctx, m.hs, m.ln) }

// listenMetrics binds the metrics listener (nil and no error when addr is "").
func listenMetrics(addr string, reg *prometheus.Registry, log *slog.Logger) (*metricsServer, error) {
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	hs := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != sidecarapi.PathMetrics {
				http.NotFound(w, r)
				return
			}
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				w.Header().Set("Allow", "GET, HEAD")
				http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
				return
			}
			metrics.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       2 * time.Minute, // a scraper comes back every interval
		MaxHeaderBytes:    8 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("serving metrics", "listen", ln.Addr().String())
	return &metricsServer{ln, hs}, nil
}

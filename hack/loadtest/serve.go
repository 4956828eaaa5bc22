package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/warden-dev/warden/hack/loadtest/tlsserve"
	"github.com/warden-dev/warden/pkg/admission"
	"github.com/warden-dev/warden/pkg/admission/mutate"
	"github.com/warden-dev/warden/pkg/guard"
	"github.com/warden-dev/warden/pkg/policy"
)

// serveOnly is the child: it serves until killed.
func serveOnly() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := startInProcess(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest -serve:", err)
		os.Exit(1)
	}
	<-ctx.Done()
}

// startInProcess serves Warden's chain on controller-runtime's webhook server with a fresh
// self-signed certificate, and announces its base URL and CA.
func startInProcess(ctx context.Context) error {
	dir, err := tlsserve.CertDir(ctx)
	if err != nil {
		return err
	}
	pol, err := policy.Parse([]byte("owners:\n  - {serviceAccount: apps/svc-prod-app-1, environment: prod}\n"))
	if err != nil {
		return err
	}
	keys, err := guard.NewRandomKeyring()
	if err != nil {
		return err
	}
	cfg := mutate.DefaultConfig()
	chain, err := admission.Chain(admission.Options{
		Config: cfg, Namespace: "warden-system", Policy: static{pol}, Namespaces: static{pol},
		Rules: cfg.Rules(keys), Log: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return err
	}
	port, err := tlsserve.FreePort()
	if err != nil {
		return err
	}
	srv := ctrlwebhook.NewServer(ctrlwebhook.Options{
		Host: "127.0.0.1", Port: port, CertDir: dir,
		TLSOpts: []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }},
	})
	for _, w := range chain {
		srv.Register(w.Path, w.Handler)
	}
	go func() { _ = srv.Start(ctx) }()
	if err := tlsserve.WaitTLS(port); err != nil {
		return err
	}
	tlsserve.Announce(port, dir)
	return nil
}

// static is both the policy source and a namespace lookup where every namespace is opted in.
type static struct{ p *policy.Policy }

func (s static) View() policy.View { return s.p }
func (s static) Labels(context.Context, string) (map[string]string, error) {
	return map[string]string{"warden.dev/inject": "enabled"}, nil
}

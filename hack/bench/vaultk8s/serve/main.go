// Command serve is vault-k8s's injector as hack/loadtest's webhook child: its Handler on
// net/http's TLS server (as vault-k8s's own command serves it), HTTP/1.1, a self-signed
// certificate, /mutate.
//
//	make loadtest-vault
package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/hashicorp/go-hclog"
	agentinject "github.com/hashicorp/vault-k8s/agent-inject"
	"github.com/hashicorp/vault-k8s/agent-inject/agent"

	"github.com/warden-dev/warden/hack/loadtest/tlsserve"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "vault-k8s serve:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	dir, err := tlsserve.CertDir(ctx)
	if err != nil {
		return err
	}
	port, err := tlsserve.FreePort()
	if err != nil {
		return err
	}
	// As in vault-k8s's own tests; the benchmark in this module uses the same.
	h := &agentinject.Handler{
		VaultAddress: "https://vault:8200", VaultAuthPath: "kubernetes", ImageVault: "hashicorp/vault:1.19",
		Log: hclog.NewNullLogger(), DefaultTemplate: agent.DefaultTemplateType,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/mutate", h.Handle)
	srv := &http.Server{
		Addr: fmt.Sprintf("127.0.0.1:%d", port), Handler: mux,
		TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}},
	}
	go func() { <-ctx.Done(); _ = srv.Close() }()
	go func() { _ = srv.ListenAndServeTLS(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")) }()
	if err := tlsserve.WaitTLS(port); err != nil {
		return err
	}
	tlsserve.Announce(port, dir)
	<-ctx.Done()
	return nil
}

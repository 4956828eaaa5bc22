// Command webhook is Warden's admission webhook (mutating and validating) and its broker. Flags
// fall back to WARDEN_* environment variables; docs/operations.md lists them all.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	ctrl "sigs.k8s.io/controller-runtime"

	webhookapp "github.com/warden-dev/warden/cmd/webhook/app"
	"github.com/warden-dev/warden/internal/flagenv"
	"github.com/warden-dev/warden/pkg/cloudstorage"
	"github.com/warden-dev/warden/pkg/contract"
	"github.com/warden-dev/warden/pkg/identity"
	"github.com/warden-dev/warden/pkg/version"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "warden-webhook:", err)
		os.Exit(1)
	}
}

func run() error {
	o := &options{}
	fs := flag.CommandLine // controller-runtime registers --kubeconfig here
	o.addFlags(fs)
	flag.Parse()
	if err := flagenv.Apply(fs, contract.EnvPrefix); err != nil {
		return err
	}
	if o.version {
		fmt.Println(version.Version)
		return nil
	}
	opts, err := o.serverOptions()
	if err != nil {
		return err
	}
	if opts.RestConfig, err = ctrl.GetConfig(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.gcpIdentity {
		iam, err := identity.NewIAMClient(ctx, o.gcpEndpoint, o.gcpInsecure)
		if err != nil {
			return fmt.Errorf("--gcp-identity: %w", err)
		}
		defer iam.Close()
		opts.GCP = &webhookapp.GCPOptions{IAM: iam, Propagation: o.gcpPropagation, Resync: o.gcpResync}
	}
	if opts.Storage != nil {
		creds, err := cloudstorage.NewIAMCredentialsClient(ctx, o.storage.credentials, o.storage.insecure)
		if err != nil {
			return fmt.Errorf("--storage: %w", err)
		}
		defer creds.Close()
		opts.Storage.IAM = creds
	}
	srv, err := webhookapp.New(opts)
	if err != nil {
		return err
	}
	opts.Log.Info("warden webhook starting", "version", version.Version, "listen", o.listen, "health", srv.HealthAddr(), "policy", o.policyFile)
	return srv.Start(ctx)
}

// logger is the process's JSON logger at level.
func logger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

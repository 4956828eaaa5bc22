// Command sidecar is Warden's per-pod sidecar. The webhook injects it with the flags below; it
// can also run by hand in local mode (--policy). `sidecar probe URL` is the exec probe the
// webhook configures, because kubelet's HTTP probes cannot reach a loopback-only listener.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/warden-dev/warden/internal/flagenv"
	"github.com/warden-dev/warden/pkg/api"
	"github.com/warden-dev/warden/pkg/health"
	"github.com/warden-dev/warden/pkg/policy"
	"github.com/warden-dev/warden/pkg/version"
)

func main() {
	var err error
	if len(os.Args) > 1 && os.Args[1] == "probe" {
		err = probe(os.Args[2:])
	} else {
		err = run(os.Args[1:])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "warden-sidecar:", err)
		os.Exit(1)
	}
}

// probe GETs a URL and fails unless it answers 2xx within two seconds.
func probe(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: warden-sidecar probe URL")
	}
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(args[0])
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: %s: %s", args[0], resp.Status, body)
	}
	return nil
}

type options struct {
	listen, owner, environment   string
	snapshotRoot, stagingRoot    string
	stateDir, brokerURL, token   string
	policyFile, auditLog         string
	allowNonLoopback, versionOut bool
}

func parseFlags(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("warden-sidecar", flag.ContinueOnError)
	fs.StringVar(&o.listen, "listen", fmt.Sprintf("127.0.0.1:%d", api.DefaultSidecarPort), "listen address (loopback only unless --allow-non-loopback)")
	fs.BoolVar(&o.allowNonLoopback, "allow-non-loopback", false, "allow --listen on a non-loopback address (exposes the API to the network)")
	fs.StringVar(&o.owner, "owner", "", "workload owner, NAMESPACE/SERVICEACCOUNT")
	fs.StringVar(&o.environment, "environment", "", "owner's environment: dev, test or prod")
	fs.StringVar(&o.snapshotRoot, "snapshot-root", api.SidecarSnapshotRoot, "read-only dataset snapshot share")
	fs.StringVar(&o.stagingRoot, "staging-root", api.SidecarStagingRoot, "staging area shared read-only with the app")
	fs.StringVar(&o.stateDir, "state-dir", api.SidecarStateDir, "metadata directory the app cannot reach")
	fs.StringVar(&o.brokerURL, "broker-url", "", "https URL of the Warden broker")
	fs.StringVar(&o.token, "token-file", api.SidecarTokenFile, "projected service-account token presented to the broker")
	fs.StringVar(&o.policyFile, "policy", "", "local mode: answer grants from this policy file instead of the broker")
	fs.StringVar(&o.auditLog, "audit-log", "", "audit log file (JSON lines); default stdout")
	fs.BoolVar(&o.versionOut, "version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if err := flagenv.Apply(fs, "WARDEN_"); err != nil {
		return nil, err
	}
	if o.versionOut {
		return o, nil
	}
	if err := policy.ValidServiceAccount(o.owner); err != nil {
		return nil, fmt.Errorf("--owner: %w", err)
	}
	if !policy.Environment(o.environment).Valid() {
		return nil, fmt.Errorf("--environment %q is not one of dev, test, prod", o.environment)
	}
	host, _, err := net.SplitHostPort(o.listen)
	if err != nil {
		return nil, fmt.Errorf("--listen: %w", err)
	}
	if ip := net.ParseIP(host); !o.allowNonLoopback && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("--listen %s is not a loopback address; the sidecar API trusts its caller, so it must not be reachable from the network (pass --allow-non-loopback to override)", o.listen)
	}
	return o, nil
}

func run(args []string) error {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	if o.versionOut {
		fmt.Println(version.Version)
		return nil
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil)).With("owner", o.owner)
	checks := &health.Checks{}
	checks.Add("sidecar", func() (health.State, string) { return health.OK, "serving" })

	mux := http.NewServeMux()
	mux.Handle("GET /healthz", health.Healthz())
	mux.Handle("GET /readyz", checks.Readyz())

	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Info("warden sidecar serving", "version", version.Version, "listen", ln.Addr().String(), "environment", o.environment)
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

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
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	sidecarapp "github.com/warden-dev/warden/cmd/sidecar/app"
	"github.com/warden-dev/warden/internal/flagenv"
	"github.com/warden-dev/warden/pkg/contract"
	"github.com/warden-dev/warden/pkg/policy"
	"github.com/warden-dev/warden/pkg/secrets"
	"github.com/warden-dev/warden/pkg/version"
)

func main() {
	var err error
	if len(os.Args) > 1 && os.Args[1] == contract.SidecarProbe {
		err = probe(os.Args[2:])
	} else {
		err = run(os.Args[1:])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "warden-sidecar:", err)
		os.Exit(1)
	}
}

// probe GETs a URL and fails unless it answers 2xx within two seconds. With --wait=D it retries
// every 10 ms for up to D: the webhook's postStart hook, which holds the app containers back
// until the sidecar answers, without waiting a probe period (a native sidecar counts as started
// when its postStart hook returns).
func probe(args []string) error {
	fs := flag.NewFlagSet("warden-sidecar probe", flag.ContinueOnError)
	wait := fs.Duration(contract.FlagProbeWait, 0, "keep trying for this long")
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
		return errors.New("usage: warden-sidecar probe [--wait=DURATION] URL")
	}
	url := fs.Arg(0)
	deadline := time.Now().Add(*wait)
	c := &http.Client{Timeout: 2 * time.Second}
	for {
		err := get(c, url)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func get(c *http.Client, url string) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: %s: %s", url, resp.Status, body)
	}
	return nil
}

type options struct {
	sidecarapp.Options
	workload         string
	syncCopies       bool
	allowNonLoopback bool
	versionOut       bool
}

func parseFlags(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("warden-sidecar", flag.ContinueOnError)
	o.addFlags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if err := flagenv.Apply(fs, contract.EnvPrefix); err != nil {
		return nil, err
	}
	if o.versionOut {
		return o, nil
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	return o, nil
}

// addFlags declares every flag with its default (each env WARDEN_NAME sets --name too).
func (o *options) addFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Listen, contract.FlagListen, fmt.Sprintf("127.0.0.1:%d", contract.DefaultSidecarPort), "listen address (loopback only unless --allow-non-loopback)")
	fs.StringVar(&o.MetricsListen, contract.FlagMetricsListen, "", "also serve /metrics, and nothing else, on this address (such as :9464) for Prometheus; off by default")
	fs.BoolVar(&o.allowNonLoopback, "allow-non-loopback", false, "allow --listen on a non-loopback address (exposes the API to the network)")
	fs.StringVar(&o.Owner, contract.FlagOwner, "", "workload owner, NAMESPACE/SERVICEACCOUNT")
	fs.StringVar(&o.Environment, contract.FlagEnvironment, "", "owner's environment: dev, test or prod")
	fs.StringVar(&o.workload, contract.FlagWorkload, string(contract.WorkloadApp), "pod layout: app, workspace or job")
	fs.StringVar(&o.DataDir, "data-dir", contract.DataDir, "where app containers see the staging folder (reported in answers)")
	fs.StringVar(&o.SnapshotRoot, contract.FlagSnapshotRoot, contract.SidecarSnapshotRoot, "read-only dataset snapshot share")
	fs.StringVar(&o.StagingRoot, contract.FlagStagingRoot, contract.SidecarStagingRoot, "staging area shared read-only with the app")
	fs.StringVar(&o.StateDir, contract.FlagStateDir, contract.SidecarStateDir, "metadata directory the app cannot reach")
	fs.DurationVar(&o.DefaultTTL, "default-ttl", 300*time.Second, "lifetime of a staged copy when the request gives none")
	fs.DurationVar(&o.MaxTTL, "max-ttl", 24*time.Hour, "longest lifetime a request may ask for (longer requests are capped)")
	fs.Int64Var(&o.QuotaBytes, "quota-bytes", 10<<30, "bytes the owner may have staged at once (0: unlimited)")
	fs.BoolVar(&o.AllowHardlinks, "allow-hardlinks", false, "stage files with several hard links (snapshot stores that deduplicate with hard links)")
	fs.BoolVar(&o.syncCopies, contract.FlagSyncCopies, true, "wait for the disk before a staged copy is visible; off only for a native sidecar, ready before any app container (copies are then checked after a node restart)")
	fs.StringVar(&o.PolicyFile, "policy", "", "local mode: answer grants from this policy file instead of the broker")
	fs.StringVar(&o.BrokerURL, contract.FlagBrokerURL, "", "https URL of the Warden broker")
	fs.StringVar(&o.BrokerCA, contract.FlagBrokerCA, "", "CA of the broker: a PEM file, or the PEM itself")
	fs.StringVar(&o.CertFile, contract.FlagCertFile, "", "the pod certificate (credential bundle: PEM key and chain, as the kubelet projects it) presented to the broker; without it, --token-file is")
	fs.StringVar(&o.TokenFile, contract.FlagTokenFile, contract.SidecarTokenFile, "projected service-account token presented to Vault, and to the broker without --cert-file")
	fs.DurationVar(&o.GrantCacheTTL, "grant-cache-ttl", 5*time.Second, "how long broker answers are reused")
	fs.DurationVar(&o.GrantStaleFor, "grant-stale-for", time.Minute, "how long past that an allowed answer is still used while the broker is unreachable")
	fs.StringVar(&o.CallerJWKS, "caller-jwks", "", "prove callers with JWTs verified against this JWKS (file or URL) instead of trusting X-Warden-Caller")
	fs.StringVar(&o.CallerIssuer, "caller-issuer", "", "expected issuer of caller JWTs")
	fs.StringVar(&o.CallerAudience, "caller-audience", "", "expected audience of caller JWTs")
	fs.StringVar(&o.CallerClaim, "caller-claim", "sub", "JWT claim that names the caller")
	fs.StringVar(&o.CallerGroupsClaim, "caller-groups-claim", "groups", "JWT claim that lists the caller's groups")
	fs.StringVar(&o.VaultAddr, contract.FlagVaultAddr, "", "Vault address; enables the secrets endpoints")
	fs.StringVar(&o.VaultRole, "vault-role", "", "Vault Kubernetes-auth role (default warden-NAMESPACE-SERVICEACCOUNT)")
	fs.StringVar(&o.VaultAuthPath, "vault-auth-path", "kubernetes", "mount path of Vault's Kubernetes auth method")
	fs.StringVar(&o.VaultMount, "vault-mount", "secret", "KV v2 mount holding the secrets")
	fs.StringVar(&o.VaultPath, "vault-path", secrets.DefaultPath, "the owner's entry under the mount; {namespace} and {owner} (service account) are filled in")
	fs.StringVar(&o.VaultCACert, "vault-ca-cert", "", "PEM file of the CA that signed Vault's certificate")
	fs.StringVar(&o.VaultNamespace, "vault-namespace", "", "Vault Enterprise namespace")
	fs.StringVar(&o.VaultTokenFile, "vault-token-file", "", "service-account token for the Vault login (default: --token-file)")
	fs.DurationVar(&o.VaultCacheTTL, "vault-cache-ttl", 30*time.Second, "how long secrets are served from memory (also how long they outlive a Vault outage)")
	fs.IntVar(&o.SecretsMaxBytes, "secrets-max-bytes", 1<<20, "size limit of all of the owner's secrets together")
	fs.StringVar(&o.AuditLog, "audit-log", "", "audit log file (JSON lines); default stdout")
	fs.DurationVar(&o.RequestTimeout, "request-timeout", 5*time.Minute, "longest time one request (a large copy included) may take")
	fs.StringVar(&o.Pod, contract.FlagPodName, "", "pod name for audit lines (the webhook sets it through "+contract.EnvPodName+")")
	fs.StringVar(&o.PodUID, contract.FlagPodUID, "", "pod UID for audit lines, telling pods of one name apart (the webhook sets it through "+contract.EnvPodUID+")")
	fs.BoolVar(&o.versionOut, "version", false, "print the version and exit")
}

// validate checks the options and reports every mistake at once.
func (o *options) validate() error {
	var errs []error
	if err := policy.ValidServiceAccount(o.Owner); err != nil {
		errs = append(errs, fmt.Errorf("--owner: %w", err))
	}
	if err := policy.Environment(o.Environment).Check(); err != nil {
		errs = append(errs, fmt.Errorf("--environment: %w", err))
	}
	if pc, err := contract.ParsePodConfig(map[string]string{contract.LabelWorkload: o.workload}); err != nil {
		errs = append(errs, fmt.Errorf("--workload: %w", err))
	} else {
		o.Workload = pc.Workload
	}
	o.NoSync = !o.syncCopies
	if host, _, err := net.SplitHostPort(o.Listen); err != nil {
		errs = append(errs, fmt.Errorf("--listen: %w", err))
	} else if ip := net.ParseIP(host); !o.allowNonLoopback && (ip == nil || !ip.IsLoopback()) {
		errs = append(errs, fmt.Errorf("--listen %s is not a loopback address; the sidecar API trusts its caller, so it must not be reachable from the network (pass --allow-non-loopback to override)", o.Listen))
	}
	if o.MetricsListen != "" {
		if _, port, err := net.SplitHostPort(o.MetricsListen); err != nil {
			errs = append(errs, fmt.Errorf("--%s: %w", contract.FlagMetricsListen, err))
		} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			errs = append(errs, fmt.Errorf("--%s %s: the port must be 1-65535", contract.FlagMetricsListen, o.MetricsListen))
		}
	}
	return errors.Join(errs...)
}

func run(args []string) error {
	sidecarapp.TuneRuntime()
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	if o.versionOut {
		fmt.Println(version.Version)
		return nil
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return sidecarapp.Run(ctx, o.Options, nil)
}

package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/transport"

	"github.com/warden-dev/warden/pkg/brokerapi"
	"github.com/warden-dev/warden/pkg/contract"
	"github.com/warden-dev/warden/pkg/policy"
	"github.com/warden-dev/warden/pkg/sidecarapi"
)

// target is where a command's requests go: the pod's sidecar, or the broker for a person. Both
// speak the sidecar's wire package for the secrets (the broker's owner secrets are the same API).
type target struct {
	c      *sidecarapi.Client
	owner  string // NAMESPACE/NAME at the broker; "" at the sidecar
	broker bool   // the broker, for a person; else the pod's sidecar
}

// what names the server for errors.
func (t *target) what() string {
	if t.broker {
		return "the Warden broker"
	}
	return "the Warden sidecar"
}

// secrets is the secrets API: the pod owner's at the sidecar, or --owner's at the broker.
func (t *target) secrets() sidecarapi.Secrets {
	if t.owner == "" {
		return t.c.Secrets()
	}
	ns, name, _ := strings.Cut(t.owner, "/")
	return t.c.OwnerSecrets(ns, name)
}

// access is "what may I do": at the sidecar for the pod's owner and its caller together, at the
// broker for the token's person (or user, for an admin).
func (t *target) access(permission, user string) (brokerapi.Access, error) {
	ctx := context.Background()
	if !t.broker {
		return t.c.WhatMayIDo(ctx, permission)
	}
	q := url.Values{}
	if permission != "" {
		q.Set("permission", permission)
	}
	if user != "" {
		q.Set("user", user)
	}
	path := brokerapi.PathAccess
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var a brokerapi.Access
	_, err := t.c.Call(ctx, http.MethodGet, path, nil, "", &a)
	return a, err
}

// explain words a failure to get an answer for people; the server's own refusals pass as they
// are ("message (status)").
func (t *target) explain(err error) error {
	if errors.Is(err, sidecarapi.ErrUnreachable) {
		return fmt.Errorf("%s is not reachable at %s: %w", t.what(), t.c.BaseURL, err)
	}
	return err
}

type targetFlags struct {
	url, owner, broker, brokerCA, serverName, kubeconfig, context *string
}

func addTargetFlags(fs *flag.FlagSet) *targetFlags {
	return &targetFlags{
		url:        fs.String("url", "", "sidecar URL (default http://127.0.0.1:$WARDEN_PORT)"),
		owner:      fs.String("owner", "", "NAMESPACE/NAME: act on that owner from outside its pods, through the broker"),
		broker:     fs.String("broker", os.Getenv(contract.EnvBrokerURL), "broker URL, e.g. https://localhost:8443 after kubectl -n warden-system port-forward svc/warden-webhook 8443 ($WARDEN_BROKER_URL)"),
		brokerCA:   fs.String("broker-ca", os.Getenv(contract.EnvBrokerCA), "PEM file with the CA of the broker's certificate ($WARDEN_BROKER_CA)"),
		serverName: fs.String("broker-server-name", "", "name to verify the broker's certificate for (default: the URL's host; warden-webhook.warden-system.svc through a port-forward)"),
		kubeconfig: fs.String("kubeconfig", "", "kubeconfig whose user's bearer token identifies you to the broker (default $KUBECONFIG or ~/.kube/config)"),
		context:    fs.String("context", "", "kubeconfig context (default the current one)"),
	}
}

// target picks the sidecar, or with --owner (or --broker, for commands without an owner) the
// broker, and builds its client.
func (f *targetFlags) target(needOwner bool) (*target, error) {
	outside := *f.owner != "" || (!needOwner && *f.broker != "")
	if !outside {
		c := &sidecarapi.Client{BaseURL: *f.url}
		if c.BaseURL == "" {
			env, err := sidecarapi.FromEnv()
			if err != nil {
				return nil, errors.New("WARDEN_PORT is not set: run this inside a Warden pod, pass --url, or use --owner NAMESPACE/NAME with --broker from outside")
			}
			c.BaseURL = env.BaseURL
		}
		c.HTTP = &http.Client{Timeout: 30 * time.Second}
		return &target{c: c}, nil
	}
	if needOwner {
		if err := policy.ValidServiceAccount(*f.owner); err != nil {
			return nil, fmt.Errorf("--owner: %w", err)
		}
	}
	if *f.broker == "" {
		return nil, errors.New("--broker (or $WARDEN_BROKER_URL) is required from outside a pod")
	}
	u, err := url.Parse(*f.broker)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("--broker %q must be an https:// URL: your Kubernetes token goes there", *f.broker)
	}
	rt, err := f.transport(u)
	if err != nil {
		return nil, err
	}
	c := &sidecarapi.Client{BaseURL: strings.TrimSuffix(*f.broker, "/"), HTTP: &http.Client{Timeout: 30 * time.Second, Transport: rt}}
	return &target{c: c, owner: *f.owner, broker: true}, nil
}

// transport verifies the broker with --broker-ca and sends the kubeconfig user's bearer token
// (a static token, a token file, or an exec plugin's such as gke-gcloud-auth-plugin or
// kubelogin). A client certificate cannot be forwarded: it proves the user to the API server
// only, so it is refused here with what to use instead.
func (f *targetFlags) transport(u *url.URL) (http.RoundTripper, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if *f.kubeconfig != "" {
		rules.ExplicitPath = *f.kubeconfig
	}
	rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: *f.context}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("reading your kubeconfig: %w", err)
	}
	if rc.Impersonate.UserName != "" {
		return nil, errors.New("the broker acts for the token's own user: drop the kubeconfig's impersonation (--as)")
	}
	tc, err := rc.TransportConfig()
	if err != nil {
		return nil, fmt.Errorf("your kubeconfig's credentials: %w", err)
	}
	if !tc.HasTokenAuth() && tc.WrapTransport == nil {
		return nil, errors.New("your kubeconfig user has no bearer token (a client certificate proves you to the API server only): use an OIDC or exec-plugin login, or a token from `kubectl create token`")
	}
	tc.Impersonate = transport.ImpersonationConfig{}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: *f.serverName}
	if *f.brokerCA != "" {
		pem, err := os.ReadFile(*f.brokerCA)
		if err != nil {
			return nil, fmt.Errorf("--broker-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--broker-ca %s holds no PEM certificate", *f.brokerCA)
		}
		tlsCfg.RootCAs = pool
	}
	return transport.HTTPWrappersForConfig(tc, &http.Transport{TLSClientConfig: tlsCfg, Proxy: http.ProxyFromEnvironment})
}

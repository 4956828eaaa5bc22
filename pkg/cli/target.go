package cli

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/transport"

	"github.com/warden-dev/warden/pkg/policy"
)

// target is where a command's requests go: the pod's sidecar, or the broker for a person.
type target struct {
	base   string // scheme://host:port
	prefix string // the API's path, e.g. /v1/secrets
	http   *http.Client
	broker bool // the broker, for a person; else the pod's sidecar
}

// what names the server for errors.
func (t *target) what() string {
	if t.broker {
		return "the Warden broker"
	}
	return "the Warden sidecar"
}

type targetFlags struct {
	url, owner, broker, brokerCA, serverName, kubeconfig, context *string
}

func addTargetFlags(fs *flag.FlagSet) *targetFlags {
	return &targetFlags{
		url:        fs.String("url", "", "sidecar URL (default http://127.0.0.1:$WARDEN_PORT)"),
		owner:      fs.String("owner", "", "NAMESPACE/NAME: act on that owner from outside its pods, through the broker"),
		broker:     fs.String("broker", os.Getenv("WARDEN_BROKER_URL"), "broker URL, e.g. https://localhost:8443 after kubectl -n warden-system port-forward svc/warden-webhook 8443 ($WARDEN_BROKER_URL)"),
		brokerCA:   fs.String("broker-ca", os.Getenv("WARDEN_BROKER_CA"), "PEM file with the CA of the broker's certificate ($WARDEN_BROKER_CA)"),
		serverName: fs.String("broker-server-name", "", "name to verify the broker's certificate for (default: the URL's host; warden-webhook.warden-system.svc through a port-forward)"),
		kubeconfig: fs.String("kubeconfig", "", "kubeconfig whose user's bearer token identifies you to the broker (default $KUBECONFIG or ~/.kube/config)"),
		context:    fs.String("context", "", "kubeconfig context (default the current one)"),
	}
}

// Paths of the APIs, in a pod and at the broker.
func secretsPath(owner string) string {
	if owner == "" {
		return "/v1/secrets"
	}
	ns, name, _ := strings.Cut(owner, "/")
	return "/v1/owners/" + url.PathEscape(ns) + "/" + url.PathEscape(name) + "/secrets"
}

func accessPath(string) string { return "/v1/access" }

// target picks the sidecar, or with --owner (or --broker, for commands without an owner) the
// broker, and builds its client.
func (f *targetFlags) target(path func(owner string) string, needOwner bool) (*target, error) {
	outside := *f.owner != "" || (!needOwner && *f.broker != "")
	if !outside {
		t := &target{base: *f.url, prefix: path(""), http: &http.Client{Timeout: 30 * time.Second}}
		if t.base == "" {
			port := os.Getenv("WARDEN_PORT")
			if port == "" {
				return nil, errors.New("WARDEN_PORT is not set: run this inside a Warden pod, pass --url, or use --owner NAMESPACE/NAME with --broker from outside")
			}
			t.base = "http://127.0.0.1:" + port
		}
		return t, nil
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
	return &target{base: strings.TrimSuffix(*f.broker, "/"), prefix: path(*f.owner), http: &http.Client{Timeout: 30 * time.Second, Transport: rt}, broker: true}, nil
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

// do calls the API at prefix+path; it returns the ETag and decodes a JSON answer into out.
func (t *target) do(method, path string, body any, ifMatch string, out any) (string, error) {
	rd, err := encode(body)
	if err != nil {
		return "", err
	}
	req, err := http.NewRequest(method, t.base+t.prefix+path, rd)
	if err != nil {
		return "", err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if ifMatch != "" {
		req.Header.Set("If-Match", ifMatch)
	}
	resp, err := t.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("%s is not reachable at %s: %w", t.what(), t.base, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if resp.StatusCode >= 300 {
		var e struct{ Error string }
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return "", fmt.Errorf("%s (%d)", e.Error, resp.StatusCode)
		}
		return "", fmt.Errorf("%s %s: %s", method, t.prefix+path, resp.Status)
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return "", err
		}
	}
	return resp.Header.Get("ETag"), nil
}

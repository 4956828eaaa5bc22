// Command loadtest drives /mutate-v1-pod over TLS on loopback at a fixed request rate and
// reports latency percentiles. By default it starts the webhook in-process (controller-runtime's
// webhook server with Warden's handler, TLS, HTTP/1.1 keep-alive, as deployed) with a static
// namespace lookup; -target points it at a running webhook instead.
//
// The generator is open-loop (internal/testing/openloop).
//
//	go run ./hack/loadtest -rate 500 -duration 30s
package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"syscall"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/warden-dev/warden/internal/testing/openloop"
	"github.com/warden-dev/warden/internal/testing/podfixture"
	"github.com/warden-dev/warden/pkg/admission"
	"github.com/warden-dev/warden/pkg/admission/mutate"
	"github.com/warden-dev/warden/pkg/contract"
	"github.com/warden-dev/warden/pkg/guard"
	"github.com/warden-dev/warden/pkg/policy"
)

func main() {
	rate := flag.Int("rate", 500, "requests per second")
	duration := flag.Duration("duration", 30*time.Second, "how long to send")
	warmup := flag.Duration("warmup", 2*time.Second, "requests sent before measuring")
	target := flag.String("target", "", "URL of a running webhook's /mutate-v1-pod (default: start one in-process)")
	caFile := flag.String("ca", "", "CA file for -target")
	large := flag.Bool("large", false, "send the 20-container pod instead of the realistic one")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile (of the server when -serve)")
	serve := flag.Bool("serve", false, "internal: run only the webhook and print its URL and CA file")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadtest:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if *serve {
		serveOnly()
		return
	}
	if err := run(*rate, *duration, *warmup, *target, *caFile, *large); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

func run(rate int, duration, warmup time.Duration, target, caFile string, large bool) error {
	if rate <= 0 || duration <= 0 {
		return errors.New("rate and duration must be positive")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if target == "" {
		// The webhook runs in a child process, as it would beside the API server: the
		// generator's own allocations and garbage collection must not stall the server.
		child, url, ca, err := startChild(ctx)
		if err != nil {
			return err
		}
		defer func() { cancel(); _ = child.Wait() }()
		target, caFile = url, ca
	}
	pool := x509.NewCertPool()
	ca, err := os.ReadFile(caFile)
	if err != nil {
		return fmt.Errorf("-ca: %w", err)
	}
	pool.AppendCertsFromPEM(ca)

	pod := podfixture.Realistic("svc-prod-app-1")
	if large {
		pod = podfixture.Large("svc-prod-app-1")
	}
	raw, err := json.Marshal(pod)
	if err != nil {
		return err
	}
	review, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:       "load",
			Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
			Namespace: "apps",
			Operation: admissionv1.Create,
			Object:    runtime.RawExtension{Raw: raw},
		},
	})
	if err != nil {
		return err
	}
	client := &http.Client{
		Timeout: 3 * time.Second, // the webhook configuration's timeoutSeconds
		Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
			MaxIdleConnsPerHost: 512,
			IdleConnTimeout:     time.Minute,
		},
	}
	send := func() error {
		resp, err := client.Post(target, "application/json", bytes.NewReader(review))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		var out admissionv1.AdmissionReview
		if err := json.Unmarshal(body, &out); err != nil {
			return fmt.Errorf("bad response: %w", err)
		}
		if out.Response == nil || !out.Response.Allowed || len(out.Response.Patch) == 0 {
			return fmt.Errorf("pod not injected: %s", body)
		}
		return nil
	}
	if err := send(); err != nil {
		return fmt.Errorf("first request: %w", err)
	}

	fmt.Printf("target %s, %d req/s, warm-up %s, measuring %s, pod %d bytes\n", target, rate, warmup, duration, len(raw))
	res := openloop.Run(rate, duration, warmup, send)
	fmt.Print(res.Report())
	if res.Failures > 0 {
		return fmt.Errorf("%d requests failed, first: %v", res.Failures, res.FirstErr)
	}
	return nil
}

// startChild re-runs this binary with -serve and reads the webhook's URL and CA file from it.
func startChild(ctx context.Context) (*exec.Cmd, string, string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, "", "", err
	}
	cmd := exec.CommandContext(ctx, self, "-serve")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", "", err
	}
	if err := cmd.Start(); err != nil {
		return nil, "", "", err
	}
	var url, ca string
	if _, err := fmt.Fscanln(out, &url, &ca); err != nil {
		return nil, "", "", fmt.Errorf("webhook child: %w", err)
	}
	return cmd, url, ca, nil
}

// serveOnly is the child: it serves until killed.
func serveOnly() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	url, ca, err := startInProcess(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadtest -serve:", err)
		os.Exit(1)
	}
	fmt.Println(url, ca)
	<-ctx.Done()
}

// startInProcess serves Warden's handler on controller-runtime's webhook server with a fresh
// self-signed certificate, and returns its URL and CA.
func startInProcess(ctx context.Context) (string, string, error) {
	dir, err := os.MkdirTemp("", "warden-load-")
	if err != nil {
		return "", "", err
	}
	go func() { <-ctx.Done(); os.RemoveAll(dir) }()
	if err := selfSigned(dir); err != nil {
		return "", "", err
	}
	pol, err := policy.Parse([]byte("owners:\n  - {serviceAccount: apps/svc-prod-app-1, environment: prod}\n"))
	if err != nil {
		return "", "", err
	}
	keys, err := guard.NewRandomKeyring()
	if err != nil {
		return "", "", err
	}
	cfg := mutate.DefaultConfig()
	chain, err := admission.Chain(admission.Options{
		Config: cfg, Namespace: "warden-system", Policy: static{pol}, Namespaces: static{pol},
		Rules: cfg.Rules(keys), Log: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return "", "", err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", "", err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	srv := ctrlwebhook.NewServer(ctrlwebhook.Options{
		Host: "127.0.0.1", Port: port, CertDir: dir,
		TLSOpts: []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }},
	})
	for _, w := range chain {
		srv.Register(w.Path, w.Handler)
	}
	go func() { _ = srv.Start(ctx) }()
	url := fmt.Sprintf("https://127.0.0.1:%d%s", port, admission.MutatePath)
	for i := 0; i < 100; i++ {
		if c, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{InsecureSkipVerify: true}); err == nil {
			c.Close()
			return url, filepath.Join(dir, "tls.crt"), nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return "", "", errors.New("in-process webhook did not start")
}

// static is both the policy source and a namespace lookup where every namespace is opted in.
type static struct{ p *policy.Policy }

func (s static) View() policy.View { return s.p }
func (s static) Labels(context.Context, string) (map[string]string, error) {
	return map[string]string{contract.LabelInject: contract.LabelInjectEnabled}, nil
}

func selfSigned(dir string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "warden-loadtest"},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(filepath.Join(dir, "tls.crt"), certPEM, 0o600); err != nil {
		return err
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	if err := os.WriteFile(filepath.Join(dir, "tls.key"), keyPEM, 0o600); err != nil {
		return err
	}
	return nil
}

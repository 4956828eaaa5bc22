package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	jsonpatch "github.com/evanphx/json-patch/v5"
	admissionv1 "k8s.io/api/admission/v1"

	"github.com/warden-dev/warden/internal/testing/podfixture"
)

// sender posts one pod's reviews in turn, as the API server does: the validating call follows
// the mutating one and carries the pod as the mutating webhook's patch left it.
type sender struct {
	client   *http.Client
	urls     []string
	bodies   [][]byte
	podBytes int
}

func newSender(o options, paths []string) (*sender, error) {
	pool := x509.NewCertPool()
	ca, err := os.ReadFile(o.caFile)
	if err != nil {
		return nil, fmt.Errorf("-ca: %w", err)
	}
	pool.AppendCertsFromPEM(ca)
	// Both injectors get the same pod: vault-k8s's annotations and the service-account token
	// volume the API server adds, which Warden ignores.
	pod := podfixture.Realistic("svc-prod-app-1")
	if o.large {
		pod = podfixture.Large("svc-prod-app-1")
	}
	raw, err := json.Marshal(podfixture.Annotated(pod))
	if err != nil {
		return nil, err
	}
	create, err := podfixture.Review("load", admissionv1.Create, raw, nil)
	if err != nil {
		return nil, err
	}
	s := &sender{
		client: &http.Client{
			Timeout: 3 * time.Second, // the webhook configuration's timeoutSeconds
			Transport: &http.Transport{
				TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
				MaxIdleConnsPerHost: 512,
				// Bounded, so that a stall (a GC pause, the machine's other work) queues
				// requests instead of opening a connection for each: unbounded, every hiccup
				// above ~3,000 req/s set off a storm of TLS handshakes on the generator's one
				// core, and the sweep measured the generator's collapse, not the webhook's
				// (Warden's webhook, pinned to its own core, was at 20 % of it then).
				MaxConnsPerHost: 64,
				IdleConnTimeout: time.Minute,
			},
		},
		urls:     []string{o.target + paths[0]},
		bodies:   [][]byte{create},
		podBytes: len(raw),
	}
	if len(paths) == 1 {
		return s, nil
	}
	resp, err := s.post(0)
	if err != nil {
		return nil, err
	}
	final, err := applied(raw, resp)
	if err != nil {
		return nil, err
	}
	validate, err := podfixture.Review("load", admissionv1.Create, final, nil)
	if err != nil {
		return nil, err
	}
	s.urls, s.bodies = append(s.urls, o.target+paths[1]), append(s.bodies, validate)
	return s, nil
}

func applied(raw []byte, resp *admissionv1.AdmissionResponse) ([]byte, error) {
	if !resp.Allowed || len(resp.Patch) == 0 {
		return nil, fmt.Errorf("pod not injected: %v", resp.Result)
	}
	p, err := jsonpatch.DecodePatch(resp.Patch)
	if err != nil {
		return nil, err
	}
	return p.Apply(raw)
}

// send is one pod: every call in turn, each allowed, the first with a patch.
func (s *sender) send() error {
	for i := range s.urls {
		resp, err := s.post(i)
		if err != nil {
			return err
		}
		if !resp.Allowed || (i == 0 && len(resp.Patch) == 0) {
			return fmt.Errorf("%s: pod not admitted or not injected: %v", s.urls[i], resp.Result)
		}
	}
	return nil
}

func (s *sender) post(i int) (*admissionv1.AdmissionResponse, error) {
	resp, err := s.client.Post(s.urls[i], "application/json", bytes.NewReader(s.bodies[i]))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &out); err != nil || out.Response == nil {
		return nil, fmt.Errorf("%s: bad response %d: %s", s.urls[i], resp.StatusCode, body)
	}
	return out.Response, nil
}

// Package vaultk8s benchmarks Warden's admission webhooks against vault-k8s's agent injector in
// one run, on the same pods, at the same layer: an HTTP handler from the AdmissionReview body to
// the response body. It is its own module so vault-k8s never enters Warden's go.mod.
//
//	cd hack/bench/vaultk8s && go test -run '^$' -bench . -benchmem
package vaultk8s

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/hashicorp/go-hclog"
	agentinject "github.com/hashicorp/vault-k8s/agent-inject"
	"github.com/hashicorp/vault-k8s/agent-inject/agent"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/warden-dev/warden/internal/testing/podfixture"
	"github.com/warden-dev/warden/pkg/admission"
	"github.com/warden-dev/warden/pkg/admission/mutate"
	"github.com/warden-dev/warden/pkg/guard"
	"github.com/warden-dev/warden/pkg/policy"
)

// static is both the policy source and a namespace lookup where every namespace is opted in.
type static struct{ p *policy.Policy }

func (s static) View() policy.View { return s.p }
func (s static) Labels(context.Context, string) (map[string]string, error) {
	return map[string]string{"warden.dev/inject": "enabled"}, nil
}

func wardenChain(b *testing.B) (mutateH, validateH http.Handler) {
	pol, err := policy.Parse([]byte("owners:\n  - {serviceAccount: apps/svc-prod-app-1, environment: prod}\n"))
	if err != nil {
		b.Fatal(err)
	}
	keys, err := guard.NewRandomKeyring()
	if err != nil {
		b.Fatal(err)
	}
	cfg := mutate.DefaultConfig()
	chain, err := admission.Chain(admission.Options{
		Config: cfg, Namespace: "warden-system", Policy: static{pol}, Namespaces: static{pol},
		Rules: cfg.Rules(keys), Log: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	for _, w := range chain {
		switch w.Path {
		case admission.MutatePath:
			mutateH = w.Handler
		case admission.ValidatePath:
			validateH = w.Handler
		}
	}
	return mutateH, validateH
}

// vaultHandler is vault-k8s's injector as its own tests configure it.
func vaultHandler() http.Handler {
	h := &agentinject.Handler{
		VaultAddress: "https://vault:8200", VaultAuthPath: "kubernetes", ImageVault: "hashicorp/vault:1.19",
		Log: hclog.NewNullLogger(), DefaultTemplate: agent.DefaultTemplateType,
	}
	return http.HandlerFunc(h.Handle)
}

// serve runs one request through h and returns its response review.
func serve(b *testing.B, h http.Handler, body []byte) *admissionv1.AdmissionResponse {
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	h.ServeHTTP(w, r)
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || out.Response == nil {
		b.Fatalf("status %d: %s", w.Code, w.Body.Bytes())
	}
	return out.Response
}

func review(b *testing.B, op admissionv1.Operation, obj, old []byte) []byte {
	body, err := podfixture.Review("load", op, obj, old)
	if err != nil {
		b.Fatal(err)
	}
	return body
}

// fixture is one pod as each side receives it: the creation both injectors get, and for
// Warden's validating webhook the pod as Warden's patch leaves it.
type fixture struct {
	name          string
	create, final []byte
	mutate, valid http.Handler
	vault         http.Handler
}

func newFixture(b *testing.B, name string, pod *corev1.Pod) *fixture {
	raw, err := json.Marshal(podfixture.Annotated(pod))
	if err != nil {
		b.Fatal(err)
	}
	f := &fixture{name: name, vault: vaultHandler()}
	f.mutate, f.valid = wardenChain(b)
	f.create = review(b, admissionv1.Create, raw, nil)
	for side, h := range map[string]http.Handler{"warden": f.mutate, "vault-k8s": f.vault} {
		resp := serve(b, h, f.create)
		if !resp.Allowed || len(resp.Patch) == 0 {
			b.Fatalf("%s did not inject: %v", side, resp.Result)
		}
		if side == "warden" {
			p, err := jsonpatch.DecodePatch(resp.Patch)
			if err != nil {
				b.Fatal(err)
			}
			out, err := p.Apply(raw)
			if err != nil {
				b.Fatal(err)
			}
			f.final = review(b, admissionv1.Create, out, nil)
		}
	}
	if resp := serve(b, f.valid, f.final); !resp.Allowed {
		b.Fatalf("validating webhook refuses the injected pod: %v", resp.Result)
	}
	return f
}

func fixtures(b *testing.B) []*fixture {
	return []*fixture{
		newFixture(b, "realistic", podfixture.Realistic("svc-prod-app-1")),
		newFixture(b, "large", podfixture.Large("svc-prod-app-1")),
	}
}

// Package admission chains Warden's admission webhooks: the paths the API server calls and the
// handler behind each, in the order the API server runs them. Each concern has its own package:
// scope (which namespaces, the decision envelope), mutate (the sidecar injection), validate
// (the pod invariant on what mutation cannot see) and review (the HTTP transport).
package admission

import (
	"log/slog"
	"net/http"

	"github.com/warden-dev/warden/pkg/admission/mutate"
	"github.com/warden-dev/warden/pkg/admission/review"
	"github.com/warden-dev/warden/pkg/admission/scope"
	"github.com/warden-dev/warden/pkg/admission/validate"
	"github.com/warden-dev/warden/pkg/guard"
)

// Where the admission handlers are served (manifests/base's webhook configurations name them).
const (
	MutatePath   = "/mutate-v1-pod"
	ValidatePath = "/validate-v1-pod"
)

// Options are what every admission handler needs.
type Options struct {
	// Config is what the mutating webhook injects; its ExemptNamespaces scope both webhooks.
	Config mutate.Config
	// Namespace is the webhook's own namespace, never touched.
	Namespace  string
	Policy     mutate.PolicySource
	Namespaces scope.Namespaces
	// Rules are the pod invariant (Config.Rules with the status keys), one for both webhooks.
	Rules   *guard.Rules
	Log     *slog.Logger
	Metrics *scope.Metrics
}

// Webhook is one admission endpoint, ready to serve.
type Webhook struct {
	Path    string
	Handler http.Handler
}

// Chain returns Warden's webhooks: mutation first, then validation of the final pod.
func Chain(o Options) ([]Webhook, error) {
	if o.Metrics == nil {
		o.Metrics = scope.NewMetrics(nil)
	}
	m, err := mutate.NewHandler(o.Config, o.Namespace, o.Policy, o.Namespaces, o.Rules, o.Log, o.Metrics)
	if err != nil {
		return nil, err
	}
	v, err := validate.New(o.Config.ExemptNamespaces, o.Namespace, o.Namespaces, o.Rules, o.Log, o.Metrics)
	if err != nil {
		return nil, err
	}
	return []Webhook{
		{MutatePath, review.New(m, o.Log)},
		{ValidatePath, review.New(v, o.Log)},
	}, nil
}

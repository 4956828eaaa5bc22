// Package scope is what Warden's admission handlers share: which namespaces Warden governs, and
// the envelope of every decision (panic safety, metrics, one log line per request).
package scope

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/warden-dev/warden/pkg/contract"
	"github.com/warden-dev/warden/pkg/guard"
)

// Outcomes of one admission, the label of the requests metric.
const (
	OutcomeInjected  = "injected"
	OutcomeUnchanged = "unchanged" // already injected: empty patch
	OutcomeAllowed   = "allowed"   // the validating webhook found nothing wrong
	OutcomeSkipped   = "skipped"   // out of scope: namespace not opted in, exempt, other operation
	OutcomeDenied    = "denied"
	OutcomeError     = "error"
)

// SystemNamespaces are never injected: breaking them would break the cluster.
var SystemNamespaces = []string{"kube-system", "kube-public", "kube-node-lease"}

// Namespaces looks up a namespace's labels (a cached client in the webhook, a map in tests).
type Namespaces = guard.Namespaces

// Scope decides which requests Warden governs and wraps every decision.
type Scope struct {
	exempt     []string
	namespaces Namespaces
	log        *slog.Logger
	metrics    *Metrics
}

// New returns a ready scope. exempt are namespaces never touched besides the system namespaces
// and ownNamespace (the webhook's own); log and m may be nil.
func New(exempt []string, ownNamespace string, ns Namespaces, log *slog.Logger, m *Metrics) (*Scope, error) {
	if ns == nil {
		return nil, errors.New("a namespace lookup is required")
	}
	if slices.Contains(exempt, "") {
		return nil, errors.New("exempt namespaces contain an empty name")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	all := append(slices.Clone(SystemNamespaces), exempt...)
	if ownNamespace != "" {
		all = append(all, ownNamespace)
	}
	return &Scope{exempt: all, namespaces: ns, log: log, metrics: m}, nil
}

// Decision is one handler's answer: the response, its outcome and, when denied, the reason.
// name receives the object's name for the log line once the handler has decoded it.
type Decision func(ctx context.Context, req admission.Request, name *string) (resp admission.Response, outcome, reason string)

// Serve runs a decision. It never panics out (a recovered panic is an error response, which the
// API server turns into a refusal because the webhooks fail closed).
func (s *Scope) Serve(ctx context.Context, req admission.Request, decide Decision) (resp admission.Response) {
	start := time.Now()
	outcome := OutcomeError
	var reason, name string
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic in admission handler", "panic", r, "uid", req.UID)
			resp, outcome = admission.Errored(http.StatusInternalServerError, fmt.Errorf("internal error in Warden webhook: %v", r)), OutcomeError
		}
		s.metrics.observe(outcome, reason, time.Since(start))
		level := logLevel(outcome)
		if !s.log.Enabled(ctx, level) {
			return
		}
		attrs := []any{"uid", req.UID, "namespace", req.Namespace, "name", name, "operation", req.Operation, "subresource", req.SubResource, "user", req.UserInfo.Username, "outcome", outcome}
		if reason != "" {
			attrs = append(attrs, "reason", reason, "message", resp.Result.Message)
		}
		s.log.Log(ctx, level, "admission", attrs...)
	}()
	resp, outcome, reason = decide(ctx, req, &name)
	return resp
}

// InScope reports why the request's namespace is out of Warden's scope ("" when it is in).
func (s *Scope) InScope(ctx context.Context, namespace string) (string, error) {
	if slices.Contains(s.exempt, namespace) {
		return "namespace is exempt from Warden", nil
	}
	// The namespaceSelector in the webhook configuration already scopes requests; this check
	// keeps the webhook safe when the configuration is edited or applied without it.
	labels, err := s.namespaces.Labels(ctx, namespace)
	if err != nil {
		return "", fmt.Errorf("warden: cannot read namespace %q: %w", namespace, err)
	}
	if labels[contract.LabelInject] != contract.LabelInjectEnabled {
		return "namespace is not opted in", nil
	}
	return "", nil
}

func logLevel(outcome string) slog.Level {
	switch outcome {
	case OutcomeDenied:
		return slog.LevelWarn
	case OutcomeError:
		return slog.LevelError
	case OutcomeSkipped:
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

// Denied refuses with the violation's message; its reason labels the denials metric.
func Denied(v *guard.Violation) (admission.Response, string, string) {
	return admission.Denied("warden: " + v.Message), OutcomeDenied, v.Reason
}

// Skipped allows a request Warden does not govern.
func Skipped(why string) (admission.Response, string, string) {
	return admission.Allowed(why), OutcomeSkipped, ""
}

// Errored answers an error; the webhooks fail closed, so the API server refuses the request.
func Errored(code int32, err error) (admission.Response, string, string) {
	return admission.Errored(code, err), OutcomeError, ""
}

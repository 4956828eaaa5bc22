package mutate

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/warden-dev/warden/pkg/api"
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

// scope is what both admission handlers share: which namespaces Warden governs, and the
// envelope of every decision (panic safety, metrics, one log line).
type scope struct {
	exempt     []string
	namespaces Namespaces
	log        *slog.Logger
	metrics    *Metrics
}

func newScope(cfg *Config, ownNamespace string, ns Namespaces, log *slog.Logger, m *Metrics) *scope {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	exempt := append(slices.Clone(SystemNamespaces), cfg.ExemptNamespaces...)
	if ownNamespace != "" {
		exempt = append(exempt, ownNamespace)
	}
	return &scope{exempt: exempt, namespaces: ns, log: log, metrics: m}
}

// decision is one handler's answer: the response, its outcome and, when denied, the reason.
type decision func(ctx context.Context, req admission.Request, name *string) (admission.Response, string, string)

// serve runs a decision. It never panics out (a recovered panic is an error response, which the
// API server turns into a refusal because the webhooks fail closed).
func (s *scope) serve(ctx context.Context, req admission.Request, decide decision) (resp admission.Response) {
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

// inScope reports why the request's namespace is out of Warden's scope ("" when it is in).
func (s *scope) inScope(ctx context.Context, namespace string) (string, error) {
	if slices.Contains(s.exempt, namespace) {
		return "namespace is exempt from Warden", nil
	}
	// The namespaceSelector in the webhook configuration already scopes requests; this check
	// keeps the webhook safe when the configuration is edited or applied without it.
	labels, err := s.namespaces.Labels(ctx, namespace)
	if err != nil {
		return "", fmt.Errorf("warden: cannot read namespace %q: %w", namespace, err)
	}
	if labels[api.LabelInject] != api.LabelInjectEnabled {
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

func denied(d *guard.Violation) (admission.Response, string, string) {
	return admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{
		Allowed: false,
		Result: &metav1.Status{
			Code:    http.StatusForbidden,
			Reason:  metav1.StatusReasonForbidden,
			Message: "warden: " + d.Message,
		},
	}}, OutcomeDenied, d.Reason
}

func skipped(why string) (admission.Response, string, string) {
	return admission.Allowed(why), OutcomeSkipped, ""
}

func errored(code int32, err error) (admission.Response, string, string) {
	return admission.Errored(code, err), OutcomeError, ""
}

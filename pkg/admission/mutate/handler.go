// Package mutate is Warden's mutating admission webhook for pods: who may run in an opted-in
// namespace, what an app container must not collide with, and the patch that adds the sidecar,
// its volumes and the app containers' read-only data mount. What a pod must not do to stay
// isolated from the sidecar is pkg/guard's invariant, which the patched pod must satisfy.
package mutate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/warden-dev/warden/pkg/admission/review"
	"github.com/warden-dev/warden/pkg/admission/scope"
	"github.com/warden-dev/warden/pkg/contract"
	"github.com/warden-dev/warden/pkg/guard"
	"github.com/warden-dev/warden/pkg/policy"
)

// PolicySource yields the policy in force, nil when none could be loaded.
type PolicySource interface {
	View() policy.View
}

// Handler is the admission.Handler for /mutate-v1-pod.
type Handler struct {
	scope  *scope.Scope
	cfg    Config
	rules  *guard.Rules
	policy PolicySource
	plans  planCache
}

// NewHandler returns a ready handler. ownNamespace is the webhook's own namespace, never touched;
// rules are the invariant for cfg (cfg.Rules), whose keys seal what it injects.
func NewHandler(cfg Config, ownNamespace string, pol PolicySource, ns scope.Namespaces, rules *guard.Rules, log *slog.Logger, m *scope.Metrics) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("mutate: %w", err)
	}
	if pol == nil || rules == nil || rules.Keys == nil {
		return nil, errors.New("mutate: policy source and rules with status keys are required")
	}
	sc, err := scope.New(cfg.ExemptNamespaces, ownNamespace, ns, log, m)
	if err != nil {
		return nil, fmt.Errorf("mutate: %w", err)
	}
	return &Handler{scope: sc, cfg: cfg, rules: rules, policy: pol}, nil
}

var _ admission.Handler = (*Handler)(nil)

// Handle admits one pod creation (see scope.Serve for the envelope).
func (h *Handler) Handle(ctx context.Context, req admission.Request) admission.Response {
	return h.scope.Serve(ctx, req, h.handle)
}

// patched allows the request with a ready JSON patch (nil: allowed unchanged).
func patched(p []byte) admission.Response {
	resp := admission.Allowed("")
	if len(p) > 0 {
		pt := admissionv1.PatchTypeJSONPatch
		resp.Patch, resp.PatchType = p, &pt
	}
	return resp
}

func (h *Handler) handle(ctx context.Context, req admission.Request, name *string) (admission.Response, string, string) {
	if req.Kind.Kind != "Pod" || req.Kind.Group != "" {
		return scope.Skipped("not a pod")
	}
	if req.Operation != admissionv1.Create || req.SubResource != "" {
		return scope.Skipped("only pod creation is mutated")
	}
	why, err := h.scope.InScope(ctx, req.Namespace)
	if err != nil {
		return scope.Errored(http.StatusInternalServerError, err)
	}
	if why != "" {
		return scope.Skipped(why)
	}
	pod, err := decodePod(ctx, req.Object.Raw)
	if err != nil {
		return scope.Errored(http.StatusBadRequest, fmt.Errorf("warden: %w", err))
	}
	*name = pod.Name
	if *name == "" {
		*name = pod.GenerateName
	}
	return h.admitCreate(req.Namespace, pod)
}

func (h *Handler) admitCreate(namespace string, decoded review.Pod) (admission.Response, string, string) {
	pod := decoded.Pod
	pol := h.policy.View()
	if pol == nil {
		return scope.Denied(deny(ReasonNoPolicy, "no Warden policy is in force (the policy file could not be loaded, or the policy objects have not synced yet), so no pod can be admitted in opted-in namespaces; see the webhook's /readyz and logs"))
	}
	owner := namespace + "/" + guard.ServiceAccount(pod)
	o, ok := pol.Owner(owner)
	if !ok {
		return scope.Denied(deny(ReasonUnknownOwner, "service account %q is not a Warden owner; pods in namespace %q (labelled %s=%s) must run as a service account listed under owners in the Warden policy: set spec.serviceAccountName to an allowed owner, or ask a cluster admin to add %q to the policy", owner, namespace, contract.LabelInject, contract.LabelInjectEnabled, owner))
	}
	pc, err := contract.ParsePodConfig(pod.Labels)
	if err != nil {
		return scope.Denied(deny(ReasonInvalidLabel, "%v", err))
	}
	r := h.plans.get(&h.cfg, owner, string(o.Environment), pc.Workload)

	if _, injected := pod.Annotations[contract.AnnotationStatus]; injected {
		// A re-invocation after other webhooks, or a copy of an injected pod: Warden's parts
		// must carry a valid seal, whichever Warden version made them.
		if _, v := h.rules.CheckEncoded(namespace, pod, decoded.Parts); v != nil {
			return scope.Denied(v)
		}
		if d := h.cfg.checkAppContainers(&pod.Spec, hasAppMount); d != nil {
			return scope.Denied(d)
		}
		// Containers another webhook added after Warden still need the data mount; for a pod
		// Warden fully injected this is empty, which is what makes re-invocation safe.
		var p patch
		h.cfg.appContainerOps(&p, &pod.Spec, r)
		return patched(p.bytes()), scope.OutcomeUnchanged, ""
	}

	if v := h.rules.Fresh(namespace, pod, r.appMount.SubPath); v != nil {
		return scope.Denied(v)
	}
	if d := h.cfg.checkAppContainers(&pod.Spec, nil); d != nil {
		return scope.Denied(d)
	}
	status := r.status
	status.Containers = h.cfg.appContainers(&pod.Spec)
	annotation, err := h.rules.Keys.Annotate(status, r.parts)
	if err != nil {
		return scope.Errored(http.StatusInternalServerError, fmt.Errorf("warden: sealing the status: %w", err))
	}
	// The pod as it will run, Warden's parts included, must satisfy the invariant before Warden
	// answers. Fresh above has judged the author's parts with the author's field paths; this
	// judges what the patch will produce, so nothing Warden adds can open a way around it. The
	// patch is built first: inject turns the decoded pod into the final one in place.
	p := h.cfg.injectPatch(pod, r, annotation)
	if _, v := h.rules.CheckOwn(namespace, h.cfg.inject(pod, r, annotation), status); v != nil {
		return scope.Denied(v)
	}
	return patched(p), scope.OutcomeInjected, ""
}

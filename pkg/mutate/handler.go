// Package mutate is Warden's admission logic for pods: who may run in an opted-in namespace,
// what a pod must not do to stay isolated from the sidecar, and the patch that adds the sidecar,
// its volumes and the app containers' read-only data mount.
package mutate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/warden-dev/warden/pkg/api"
	"github.com/warden-dev/warden/pkg/policy"
)

// PolicySource yields the policy in force, nil when none could be loaded.
type PolicySource interface {
	Current() *policy.Policy
}

// Namespaces looks up a namespace's labels (a cached client in the webhook, a map in tests).
type Namespaces interface {
	Labels(ctx context.Context, name string) (map[string]string, error)
}

// Handler is the admission.Handler for /mutate-v1-pod.
type Handler struct {
	cfg        Config
	ownNS      string
	policy     PolicySource
	namespaces Namespaces
	log        *slog.Logger
	metrics    *Metrics
	plans      planCache
}

// NewHandler returns a ready handler. ownNamespace is the webhook's own namespace, never touched.
func NewHandler(cfg Config, ownNamespace string, pol PolicySource, ns Namespaces, log *slog.Logger, m *Metrics) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("mutate: %w", err)
	}
	if pol == nil || ns == nil {
		return nil, errors.New("mutate: policy source and namespace lookup are required")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	return &Handler{cfg: cfg, ownNS: ownNamespace, policy: pol, namespaces: ns, log: log, metrics: m}, nil
}

var _ admission.Handler = (*Handler)(nil)

// Outcomes of one admission, the label of the requests metric.
const (
	OutcomeInjected  = "injected"
	OutcomeUnchanged = "unchanged" // already injected: empty patch
	OutcomeSkipped   = "skipped"   // out of scope: namespace not opted in, exempt, other operation
	OutcomeDenied    = "denied"
	OutcomeError     = "error"
)

// Handle admits one request. It never panics out (a recovered panic is an error response, which
// the API server turns into a refusal because the webhook fails closed).
func (h *Handler) Handle(ctx context.Context, req admission.Request) (resp admission.Response) {
	start := time.Now()
	outcome := OutcomeError
	var reason, name string
	defer func() {
		if r := recover(); r != nil {
			h.log.Error("panic in admission handler", "panic", r, "uid", req.UID)
			resp, outcome = admission.Errored(http.StatusInternalServerError, fmt.Errorf("internal error in Warden webhook: %v", r)), OutcomeError
		}
		h.metrics.observe(outcome, reason, time.Since(start))
		level := logLevel(outcome)
		if !h.log.Enabled(ctx, level) {
			return
		}
		attrs := []any{"uid", req.UID, "namespace", req.Namespace, "name", name, "operation", req.Operation, "outcome", outcome}
		if reason != "" {
			attrs = append(attrs, "reason", reason, "message", resp.Result.Message)
		}
		h.log.Log(ctx, level, "admission", attrs...)
	}()

	resp, outcome, reason = h.handle(ctx, req, &name)
	return resp
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

// patched allows the request with a ready JSON patch (nil: allowed unchanged).
func patched(p []byte) admission.Response {
	resp := admission.Allowed("")
	if len(p) > 0 {
		pt := admissionv1.PatchTypeJSONPatch
		resp.Patch, resp.PatchType = p, &pt
	}
	return resp
}

func denied(d *denial) (admission.Response, string, string) {
	return admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{
		Allowed: false,
		Result: &metav1.Status{
			Code:    http.StatusForbidden,
			Reason:  metav1.StatusReasonForbidden,
			Message: "warden: " + d.message,
		},
	}}, OutcomeDenied, d.reason
}

func skipped(why string) (admission.Response, string, string) {
	return admission.Allowed(why), OutcomeSkipped, ""
}

func (h *Handler) exempt(ns string) bool {
	return ns == h.ownNS || slices.Contains(SystemNamespaces, ns) || slices.Contains(h.cfg.ExemptNamespaces, ns)
}

func (h *Handler) handle(ctx context.Context, req admission.Request, name *string) (admission.Response, string, string) {
	if req.Kind.Kind != "Pod" || req.Kind.Group != "" {
		return skipped("not a pod")
	}
	if h.exempt(req.Namespace) {
		return skipped("namespace is exempt from Warden")
	}
	// The namespaceSelector in the webhook configuration already scopes requests; this check
	// keeps the webhook safe when the configuration is edited or applied without it.
	labels, err := h.namespaces.Labels(ctx, req.Namespace)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("warden: cannot read namespace %q: %w", req.Namespace, err)), OutcomeError, ""
	}
	if labels[api.LabelInject] != api.LabelInjectEnabled {
		return skipped("namespace is not opted in")
	}

	pod, err := decodePod(req.Object.Raw)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("warden: %w", err)), OutcomeError, ""
	}
	*name = pod.Name
	if *name == "" {
		*name = pod.GenerateName
	}
	switch {
	case req.Operation == admissionv1.Update && req.SubResource == "ephemeralcontainers":
		return h.admitEphemeral(pod)
	case req.Operation != admissionv1.Create || req.SubResource != "":
		return skipped("only pod creation is mutated")
	}
	return h.admitCreate(req.Namespace, pod)
}

func (h *Handler) admitCreate(namespace string, pod *corev1.Pod) (admission.Response, string, string) {
	pol := h.policy.Current()
	if pol == nil {
		return denied(deny(ReasonNoPolicy, "the Warden policy could not be loaded, so no pod can be admitted in opted-in namespaces; a cluster admin must fix the policy ConfigMap (see the webhook's /readyz and logs)"))
	}
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	owner := namespace + "/" + sa
	o, ok := pol.Owner(owner)
	if !ok {
		return denied(deny(ReasonUnknownOwner, "service account %q is not a Warden owner; pods in namespace %q (labelled %s=%s) must run as a service account listed under owners in the Warden policy: set spec.serviceAccountName to an allowed owner, or ask a cluster admin to add %q to the policy", owner, namespace, api.LabelInject, api.LabelInjectEnabled, owner))
	}
	pc, err := api.ParsePodConfig(pod.Labels)
	if err != nil {
		return denied(deny(ReasonInvalidLabel, "%v", err))
	}
	if d := checkIsolation(&pod.Spec); d != nil {
		return denied(d)
	}
	r := h.plans.get(&h.cfg, owner, string(o.Environment), pc.Workload)
	pl := r.plan

	if _, injected := pod.Annotations[api.AnnotationStatus]; injected {
		isOurs := func(name string) bool {
			return slices.ContainsFunc(pl.volumes, func(v corev1.Volume) bool { return v.Name == name })
		}
		if d := h.cfg.checkVolumes(&pod.Spec, isOurs); d != nil {
			return denied(d)
		}
		if d := h.cfg.verifyInjected(&pod.Spec, pl); d != nil {
			return denied(d)
		}
		if d := h.cfg.checkAppContainers(&pod.Spec, hasAppMount); d != nil {
			return denied(d)
		}
		// Containers another webhook added after Warden still need the data mount; for a pod
		// Warden fully injected this is empty, which is what makes re-invocation safe.
		var p patch
		h.cfg.appContainerOps(&p, &pod.Spec, r)
		return patched(p.bytes()), OutcomeUnchanged, ""
	}

	if d := h.cfg.checkVolumes(&pod.Spec, nil); d != nil {
		return denied(d)
	}
	if d := h.cfg.checkReserved(&pod.Spec); d != nil {
		return denied(d)
	}
	return patched(h.cfg.injectPatch(pod, r)), OutcomeInjected, ""
}

// admitEphemeral guards `kubectl debug` on an injected pod: an ephemeral container must not
// target the sidecar (that would share its process namespace) or mount Warden's volumes.
func (h *Handler) admitEphemeral(pod *corev1.Pod) (admission.Response, string, string) {
	raw, injected := pod.Annotations[api.AnnotationStatus]
	if !injected {
		return skipped("pod is not Warden-injected")
	}
	var st api.Status
	if err := json.Unmarshal([]byte(raw), &st); err != nil {
		return denied(deny(ReasonForgedInjection, "annotation %s is not valid JSON: %v", api.AnnotationStatus, err))
	}
	ownFolder := subPath(st.Environment, st.Owner, st.Workload)
	for i, ec := range pod.Spec.EphemeralContainers {
		field := fmt.Sprintf("spec.ephemeralContainers[%d] (%q)", i, ec.Name)
		if ec.TargetContainerName == api.SidecarName {
			return denied(deny(ReasonEphemeralToSidecar, "%s targets the Warden sidecar, which would expose its memory and credentials; target an app container instead", field))
		}
		for _, m := range ec.VolumeMounts {
			if m.Name == api.VolumeSnapshots || m.Name == api.VolumeState || m.Name == api.VolumeToken || (m.Name == api.VolumeStaging && (!m.ReadOnly || m.SubPath != ownFolder)) {
				return denied(deny(ReasonEphemeralToSidecar, "%s mounts %s, which only the Warden sidecar may use (app containers may mount %s read-only with subPath %q)", field, m.Name, api.VolumeStaging, ownFolder))
			}
		}
	}
	if d := checkIsolation(&pod.Spec); d != nil {
		return denied(d)
	}
	return admission.Allowed(""), OutcomeUnchanged, ""
}

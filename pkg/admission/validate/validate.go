// Package validate is Warden's validating admission webhook: pkg/guard's invariant enforced on
// what the mutating webhook cannot see.
package validate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	sigsjson "sigs.k8s.io/json"

	"github.com/warden-dev/warden/pkg/admission/review"
	"github.com/warden-dev/warden/pkg/admission/scope"
	"github.com/warden-dev/warden/pkg/guard"
)

// Validator is the admission.Handler for /validate-v1-pod. It runs after every mutating webhook
// and enforces pkg/guard's invariant where the mutating webhook cannot see: on the final pod
// (whatever webhooks ran after Warden), on every update of a pod, on `kubectl exec`/`attach`,
// and on claims and volume snapshots that could copy the dataset share. It judges the seal and
// old-versus-new, never what this version would inject, so a rolling upgrade and pods injected
// by older versions pass.
type Validator struct {
	scope *scope.Scope
	rules *guard.Rules
}

// New returns a ready validating handler. exempt and ownNamespace are the namespaces Warden
// never touches (the mutating webhook's, so both agree on what is in scope); m may be shared
// with the mutating handler.
func New(exempt []string, ownNamespace string, ns scope.Namespaces, rules *guard.Rules, log *slog.Logger, m *scope.Metrics) (*Validator, error) {
	if rules == nil || rules.Keys == nil {
		return nil, errors.New("validate: rules with status keys are required")
	}
	sc, err := scope.New(exempt, ownNamespace, ns, log, m)
	if err != nil {
		return nil, fmt.Errorf("validate: %w", err)
	}
	return &Validator{scope: sc, rules: rules}, nil
}

var _ admission.Handler = (*Validator)(nil)

// Handle judges one request.
func (v *Validator) Handle(ctx context.Context, req admission.Request) admission.Response {
	return v.scope.Serve(ctx, req, v.handle)
}

func (v *Validator) handle(ctx context.Context, req admission.Request, name *string) (admission.Response, string, string) {
	*name = req.Name
	judge := v.route(req)
	if judge == nil {
		return scope.Skipped("not a request Warden validates")
	}
	why, err := v.scope.InScope(ctx, req.Namespace)
	if err != nil {
		return scope.Errored(http.StatusInternalServerError, err)
	}
	if why != "" {
		return scope.Skipped(why)
	}
	violation, err := judge(ctx, req)
	switch {
	case err != nil:
		return scope.Errored(http.StatusBadRequest, fmt.Errorf("warden: %w", err))
	case violation != nil:
		return scope.Denied(violation)
	}
	return admission.Allowed(""), scope.OutcomeAllowed, ""
}

type judgement func(context.Context, admission.Request) (*guard.Violation, error)

// route picks the rule for a request; nil when Warden has nothing to say about it.
func (v *Validator) route(req admission.Request) judgement {
	gr := req.Resource.Group + "/" + req.Resource.Resource
	switch {
	case gr == "/pods" && req.Operation == admissionv1.Create && req.SubResource == "":
		return v.podCreate
	case gr == "/pods" && req.Operation == admissionv1.Update:
		// The pod itself and every subresource that changes it: status (which keeps annotation
		// changes), ephemeralcontainers (`kubectl debug`) and resize. One rule for all.
		return v.podUpdate
	case gr == "/pods" && req.Operation == admissionv1.Create && req.SubResource == "binding":
		return binding
	case gr == "/pods" && req.Operation == admissionv1.Connect && (req.SubResource == "exec" || req.SubResource == "attach"):
		return connect
	case gr == "/persistentvolumeclaims" && req.Operation == admissionv1.Create:
		return v.claim
	case gr == "snapshot.storage.k8s.io/volumesnapshots" && req.Operation == admissionv1.Create:
		return v.snapshot
	case gr == "certificates.k8s.io/podcertificaterequests" && req.Operation == admissionv1.Create:
		return certificateRequest
	}
	return nil
}

func (v *Validator) podCreate(ctx context.Context, req admission.Request) (*guard.Violation, error) {
	pod, err := review.PodOf(ctx, req.Object.Raw)
	if err != nil {
		return nil, err
	}
	_, violation := v.rules.CheckEncoded(req.Namespace, pod.Pod, pod.Parts)
	return violation, nil
}

func (v *Validator) podUpdate(ctx context.Context, req admission.Request) (*guard.Violation, error) {
	pod, err := review.PodOf(ctx, req.Object.Raw)
	if err != nil {
		return nil, err
	}
	old, err := review.PodOf(ctx, req.OldObject.Raw)
	if err != nil {
		return nil, fmt.Errorf("old object: %w", err)
	}
	return v.rules.Update(old.Pod, pod.Pod), nil
}

// certificateRequest reads who asks Warden's signer for a certificate, and for which node.
func certificateRequest(_ context.Context, req admission.Request) (*guard.Violation, error) {
	var pcr struct {
		Spec struct {
			SignerName string `json:"signerName"`
			NodeName   string `json:"nodeName"`
		} `json:"spec"`
	}
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(req.Object.Raw, &pcr); err != nil {
		return nil, fmt.Errorf("cannot decode pod certificate request: %w", err)
	}
	return guard.CertificateRequester(pcr.Spec.SignerName, pcr.Spec.NodeName, req.UserInfo.Username, req.UserInfo.Groups), nil
}

// binding reads the annotations a Binding would copy onto its pod.
func binding(_ context.Context, req admission.Request) (*guard.Violation, error) {
	var b struct {
		Metadata struct {
			Annotations map[string]string `json:"annotations"`
		} `json:"metadata"`
	}
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(req.Object.Raw, &b); err != nil {
		return nil, fmt.Errorf("cannot decode binding: %w", err)
	}
	return guard.Binding(b.Metadata.Annotations), nil
}

// connect reads the container of PodExecOptions or PodAttachOptions.
func connect(_ context.Context, req admission.Request) (*guard.Violation, error) {
	var opts struct {
		Container string `json:"container"`
	}
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(req.Object.Raw, &opts); err != nil {
		return nil, fmt.Errorf("cannot decode %s options: %w", req.SubResource, err)
	}
	return guard.Connect(opts.Container), nil
}

func (v *Validator) claim(_ context.Context, req admission.Request) (*guard.Violation, error) {
	var pvc corev1.PersistentVolumeClaim
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(req.Object.Raw, &pvc); err != nil {
		return nil, fmt.Errorf("cannot decode claim: %w", err)
	}
	return v.rules.Claim(&pvc.Spec), nil
}

// snapshot reads a VolumeSnapshot's source without its CRD's Go types (it may not be installed).
func (v *Validator) snapshot(_ context.Context, req admission.Request) (*guard.Violation, error) {
	var vs struct {
		Spec struct {
			Source struct {
				PersistentVolumeClaimName string `json:"persistentVolumeClaimName"`
			} `json:"source"`
		} `json:"spec"`
	}
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(req.Object.Raw, &vs); err != nil {
		return nil, fmt.Errorf("cannot decode volume snapshot: %w", err)
	}
	return v.rules.SnapshotOf(vs.Spec.Source.PersistentVolumeClaimName), nil
}

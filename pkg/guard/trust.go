package guard

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/warden-dev/warden/pkg/contract"
)

// Namespaces looks up a namespace's labels (the webhook's cache; a map in tests).
type Namespaces interface {
	Labels(ctx context.Context, name string) (map[string]string, error)
}

// LookupError is a lookup that failed (the namespace could not be read): not a judgement on the
// pod, so callers answer "unavailable", never "forbidden".
type LookupError struct{ Err error }

func (e *LookupError) Error() string { return e.Err.Error() }
func (e *LookupError) Unwrap() error { return e.Err }

// Trusted applies the admission webhooks' judgement to a live pod, for those who act on a pod's
// behalf after admission (the broker answering its sidecar, the signer issuing its
// certificate): its namespace is opted in (a pod made to look injected where Warden does not
// govern never passed admission), and it passes Check with a valid seal. The error is a
// *Violation or a *LookupError.
func (r *Rules) Trusted(ctx context.Context, ns Namespaces, pod *corev1.Pod) (*Injection, error) {
	labels, err := ns.Labels(ctx, pod.Namespace)
	if err != nil {
		return nil, &LookupError{fmt.Errorf("namespace %s: %w", pod.Namespace, err)}
	}
	if labels[contract.LabelInject] != contract.LabelInjectEnabled {
		return nil, Deny(ReasonNotInjected, "namespace %s is not opted in to Warden (label %s=%s)", pod.Namespace, contract.LabelInject, contract.LabelInjectEnabled)
	}
	inj, v := r.Check(pod.Namespace, pod)
	if v != nil {
		return nil, v
	}
	return inj, nil
}

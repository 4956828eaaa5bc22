package mutate

import (
	"errors"

	corev1 "k8s.io/api/core/v1"

	"github.com/warden-dev/warden/pkg/admission/review"
)

// decodePod decodes the raw object as the validating webhook does (review.ReadPod: what the
// checks and the patch read, Warden's parts in full). The patch addresses /metadata and /spec,
// so both must be JSON objects, and a pod needs a container; the API server never sends
// anything else, but the handler must not trust it.
func decodePod(raw []byte) (*corev1.Pod, error) {
	p, err := review.ReadPod(raw)
	switch {
	case err != nil:
		return nil, err
	case !p.HasMetadata:
		return nil, errors.New("pod has no metadata object")
	case !p.HasSpec:
		return nil, errors.New("pod has no spec object")
	case len(p.Spec.Containers) == 0:
		return nil, errors.New("pod has no containers")
	}
	return p.Pod, nil
}

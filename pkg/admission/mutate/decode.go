package mutate

import (
	"context"
	"errors"

	"github.com/warden-dev/warden/pkg/admission/review"
)

// decodePod decodes the raw object as the validating webhook does (review.ReadPod: what the
// checks and the patch read, Warden's parts in full). The patch addresses /metadata and /spec,
// so both must be JSON objects, and a pod needs a container; the API server never sends
// anything else, but the handler must not trust it.
func decodePod(ctx context.Context, raw []byte) (review.Pod, error) {
	p, err := review.PodOf(ctx, raw)
	switch {
	case err != nil:
		return review.Pod{}, err
	case !p.HasMetadata:
		return review.Pod{}, errors.New("pod has no metadata object")
	case !p.HasSpec:
		return review.Pod{}, errors.New("pod has no spec object")
	case len(p.Spec.Containers) == 0:
		return review.Pod{}, errors.New("pod has no containers")
	}
	return p, nil
}

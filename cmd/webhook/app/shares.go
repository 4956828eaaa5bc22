package app

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/warden-dev/warden/pkg/guard"
)

// shareBacking tells the guard what storage serves each namespace's share claim: the
// PersistentVolume the claim is bound to, read through the manager's cache (claims of the
// share's name only, and PersistentVolumes). A pod's inline volumes are compared with it, so the
// share's CSI driver or NFS export cannot be mounted under another name.
type shareBacking struct{ r client.Reader }

var _ guard.Shares = shareBacking{}

// newShareBacking registers the claim and PersistentVolume informers with the cache, so they
// start and sync with it instead of on the first pod that needs them.
func newShareBacking(c cache.Cache) (shareBacking, error) {
	for _, o := range []client.Object{&corev1.PersistentVolumeClaim{}, &corev1.PersistentVolume{}} {
		if _, err := c.GetInformer(context.Background(), o, cache.BlockUntilSynced(false)); err != nil {
			return shareBacking{}, fmt.Errorf("webhook: watching %T: %w", o, err)
		}
	}
	return shareBacking{c}, nil
}

// shareLookupTimeout bounds one lookup: it runs inside an admission call.
const shareLookupTimeout = time.Second

func (s shareBacking) Backing(namespace, claim string) guard.Backing {
	ctx, cancel := context.WithTimeout(context.Background(), shareLookupTimeout)
	defer cancel()
	var pvc corev1.PersistentVolumeClaim
	switch err := s.r.Get(ctx, client.ObjectKey{Namespace: namespace, Name: claim}, &pvc); {
	case apierrors.IsNotFound(err):
		return guard.Backing{Unknown: fmt.Sprintf("the share's claim %s/%s does not exist", namespace, claim)}
	case err != nil:
		return guard.Backing{Unknown: fmt.Sprintf("reading the share's claim %s/%s: %v", namespace, claim, err)}
	case pvc.Spec.VolumeName == "":
		return guard.Backing{Unknown: fmt.Sprintf("the share's claim %s/%s is not bound to a PersistentVolume yet", namespace, claim)}
	}
	var pv corev1.PersistentVolume
	if err := s.r.Get(ctx, client.ObjectKey{Name: pvc.Spec.VolumeName}, &pv); err != nil {
		return guard.Backing{Unknown: fmt.Sprintf("reading PersistentVolume %s behind the share's claim %s/%s: %v", pvc.Spec.VolumeName, namespace, claim, err)}
	}
	return guard.PersistentVolumeBacking(&pv.Spec.PersistentVolumeSource)
}

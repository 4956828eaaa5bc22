package app

import (
	"context"
	"crypto/tls"
	"fmt"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/warden-dev/warden/pkg/clusterpolicy"
	"github.com/warden-dev/warden/pkg/identity"
	"github.com/warden-dev/warden/pkg/podcert"
)

// newManager prepares controller-runtime's manager: the admission TLS server, the caches
// (namespace metadata; pods for the identity reconciler) and leader election.
func newManager(opts Options) (ctrl.Manager, error) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := clusterpolicy.AddToScheme(scheme); err != nil {
		return nil, err
	}
	mgrOpts := ctrl.Options{
		Scheme:                 scheme,
		Logger:                 logr.FromSlogHandler(opts.Log.Handler()),
		Metrics:                metricsserver.Options{BindAddress: "0"}, // served on HealthAddr instead
		HealthProbeBindAddress: "0",
		WebhookServer: ctrlwebhook.NewServer(ctrlwebhook.Options{
			Host:    opts.Host,
			Port:    opts.Port,
			CertDir: opts.CertDir,
			TLSOpts: []func(*tls.Config){func(c *tls.Config) {
				c.MinVersion = tls.VersionTLS12
				// HTTP/2 is off: the API server does not need it, and it has a history of
				// resource-exhaustion bugs (CVE-2023-44487) on exposed listeners.
				c.NextProtos = []string{"http/1.1"}
			}},
		}),
	}
	byObject := map[client.Object]cache.ByObject{}
	if opts.GCP != nil {
		// The identity reconciler watches pods cluster-wide, reduced to the few fields it reads.
		byObject[&corev1.Pod{}] = cache.ByObject{Transform: identity.StripPod}
	}
	if !opts.NoPolicyObjects {
		byObject = clusterpolicy.CacheOptions(byObject)
	}
	if pvc := opts.Mutate.SnapshotVolume.PersistentVolumeClaim; pvc != nil {
		// The guard reads the share's claim in each namespace (only claims of that name are
		// kept) and the PersistentVolume behind it.
		byObject[&corev1.PersistentVolumeClaim{}] = cache.ByObject{Field: fields.OneTermEqualSelector("metadata.name", pvc.ClaimName)}
	}
	signer := opts.signs()
	if signer {
		podcert.CacheOptions(byObject)
	}
	mgrOpts.Cache = cache.Options{ByObject: byObject}
	if opts.GCP != nil || !opts.NoPolicyObjects || signer {
		// The identity reconciler, the policy objects' status writer and the certificate signer
		// run on one replica at a time.
		mgrOpts.LeaderElection = true
		mgrOpts.LeaderElectionID = "warden-webhook-leader"
		mgrOpts.LeaderElectionNamespace = opts.Namespace
		mgrOpts.LeaderElectionReleaseOnCancel = true
	}
	mgr, err := ctrl.NewManager(opts.RestConfig, mgrOpts)
	if err != nil {
		return nil, fmt.Errorf("webhook: manager: %w", err)
	}
	return mgr, nil

}

// namespaceLabels reads namespace labels through the manager's cache. Asking for metadata only
// makes the cache keep a metadata informer, so the webhook never holds full Namespace objects.
type namespaceLabels struct{ r client.Reader }

func (n namespaceLabels) Labels(ctx context.Context, name string) (map[string]string, error) {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
	if err := n.r.Get(ctx, client.ObjectKey{Name: name}, m); err != nil {
		return nil, err
	}
	return m.Labels, nil
}

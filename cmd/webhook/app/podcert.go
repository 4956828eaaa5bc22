package app

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"time"

	certv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/warden-dev/warden/pkg/admission/mutate"
	"github.com/warden-dev/warden/pkg/podcert"
)

// The sidecar certificates' signer and the published CA bundle: with pod-certificate identity,
// the leader answers the kubelet's PodCertificateRequests and keeps the ConfigMap
// SidecarCAConfigMap (key ca.crt) equal to the authority's CAs, for whoever else verifies
// sidecars (Vault's cert auth, docs/secrets.md).

// SidecarCAConfigMap is the ConfigMap in the webhook's namespace with the sidecar CAs.
const SidecarCAConfigMap = "warden-sidecar-ca"

// signs is whether this process runs the sidecar certificates' signer: with the broker, in
// pod-certificate identity.
func (o *Options) signs() bool {
	return o.BrokerAddr != "" && o.Mutate.SidecarIdentity == mutate.IdentityPodCertificate
}

func (s *Server) setupSigner(authority *podcert.Authority) error {
	signer := &podcert.Signer{
		Authority: authority, Kube: s.kube, Rules: s.rules, Namespaces: namespaceLabels{s.mgr.GetCache()},
		Lifetime: time.Duration(s.opts.Mutate.CertificateSeconds) * time.Second,
		Log:      s.log.With("component", "podcert-signer"),
	}
	if err := signer.SetupWithManager(s.mgr, s.opts.Registry); err != nil {
		return fmt.Errorf("webhook: pod certificate signer: %w", err)
	}
	publish := &caPublisher{kube: s.kube, namespace: s.opts.Namespace, authority: authority, log: s.log}
	return s.mgr.Add(manager.RunnableFunc(publish.run))
}

// servesPodCertificates says, before the manager's cache needs the kind's REST mapping (New), when
// the cluster has no PodCertificateRequest API (Kubernetes before 1.37, or the feature off).
func servesPodCertificates(d discovery.DiscoveryInterface) error {
	list, err := d.ServerResourcesForGroupVersion(certv1.SchemeGroupVersion.String())
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("webhook: asking the API server for PodCertificateRequests: %w", err)
	}
	if list != nil {
		for _, r := range list.APIResources {
			if r.Name == "podcertificaterequests" {
				return nil
			}
		}
	}
	return fmt.Errorf("webhook: this cluster serves no %s podcertificaterequests (Kubernetes 1.37 or later, feature PodCertificateRequest), which --sidecar-identity=%s needs; upgrade, or run with --sidecar-identity=%s (weaker: docs/security.md)",
		certv1.SchemeGroupVersion, mutate.IdentityPodCertificate, mutate.IdentityToken)
}

type caPublisher struct {
	kube      kubernetes.Interface
	namespace string
	authority *podcert.Authority
	log       *slog.Logger
}

// run publishes at start and after every status key refresh could have changed the CAs.
func (p *caPublisher) run(ctx context.Context) error {
	t := time.NewTicker(StatusKeyRefresh)
	defer t.Stop()
	for {
		if err := p.publish(ctx); err != nil && ctx.Err() == nil {
			p.log.Error("sidecar CA bundle not published", "configmap", p.namespace+"/"+SidecarCAConfigMap, "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (p *caPublisher) publish(ctx context.Context) error {
	bundle, err := p.authority.BundlePEM()
	if err != nil {
		return err
	}
	cms := p.kube.CoreV1().ConfigMaps(p.namespace)
	cm, err := cms.Get(ctx, SidecarCAConfigMap, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = cms.Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: SidecarCAConfigMap, Namespace: p.namespace, Labels: map[string]string{"app.kubernetes.io/part-of": "warden"}},
			Data:       map[string]string{"ca.crt": string(bundle)},
		}, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	if bytes.Equal([]byte(cm.Data["ca.crt"]), bundle) {
		return nil
	}
	if cm.Data == nil {
		cm.Data = map[string]string{}
	}
	cm.Data["ca.crt"] = string(bundle)
	_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
	return err
}

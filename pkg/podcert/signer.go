package podcert

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	certv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/warden-dev/warden/pkg/contract"
	"github.com/warden-dev/warden/pkg/guard"
)

// Reasons of a denied request, in its Denied condition and the results metric.
const (
	ReasonPodGone       = "PodGone"
	ReasonPodMismatch   = "PodMismatch"
	ReasonNotTrusted    = "PodNotTrusted"
	ReasonNotRequested  = "NotRequestedByWarden"
	ReasonInvalidCSR    = "InvalidRequest"
	ReasonUnsupportedKT = certv1.PodCertificateRequestConditionUnsupportedKeyType
	ReasonUserConfig    = certv1.PodCertificateRequestConditionInvalidUserConfig
)

// MinLifetime is the shortest certificate Kubernetes accepts from a signer.
const MinLifetime = time.Hour

// Signer issues warden.dev/sidecar certificates. It answers each PodCertificateRequest of its
// signer once, on the leader: issued when the pod named in it is the live pod (uid, node and
// service account as requested), is trusted (guard.Rules.Trusted: opted-in namespace, the
// invariant with a valid seal) and asked for this signer in Warden's own token volume; denied,
// with the reason, otherwise. The API server has checked the request's proof of possession, and
// Warden's validating webhook that a node, the pod's own, created it.
type Signer struct {
	Authority  *Authority
	Kube       kubernetes.Interface
	Rules      *guard.Rules
	Namespaces guard.Namespaces
	// Lifetime of issued certificates (default and minimum MinLifetime), capped by each
	// request's maxExpirationSeconds. The kubelet refreshes at half of it.
	Lifetime time.Duration
	Log      *slog.Logger
	// Now is the clock (tests).
	Now func() time.Time

	once    sync.Once
	results *prometheus.CounterVec
}

// CacheOptions keep only this signer's requests in the manager's cache.
func CacheOptions(byObject map[client.Object]cache.ByObject) {
	byObject[&certv1.PodCertificateRequest{}] = cache.ByObject{Field: fields.OneTermEqualSelector("spec.signerName", contract.SignerName)}
}

// defaults fills in what was left out; Answer and SetupWithManager call it once.
func (s *Signer) defaults() {
	if s.Lifetime < MinLifetime {
		s.Lifetime = MinLifetime
	}
	if s.Log == nil {
		s.Log = slog.New(slog.DiscardHandler)
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	s.results = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "warden_podcert_requests_total",
		Help: "PodCertificateRequests for warden.dev/sidecar answered by this replica, by result (issued, denied) and reason.",
	}, []string{"result", "reason"})
}

// SetupWithManager registers the signer's controller and its metric
// (warden_podcert_requests_total{result,reason}).
func (s *Signer) SetupWithManager(mgr ctrl.Manager, reg prometheus.Registerer) error {
	if s.Authority == nil || s.Kube == nil || s.Rules == nil || s.Namespaces == nil {
		return errors.New("podcert: the signer needs an authority, a client, the rules and a namespace lookup")
	}
	s.once.Do(s.defaults)
	if reg != nil {
		if err := reg.Register(s.results); err != nil {
			return err
		}
	}
	ours := predicate.NewPredicateFuncs(func(o client.Object) bool {
		pcr, ok := o.(*certv1.PodCertificateRequest)
		return ok && pcr.Spec.SignerName == contract.SignerName
	})
	return ctrl.NewControllerManagedBy(mgr).
		Named("warden-podcert-signer").
		For(&certv1.PodCertificateRequest{}, builder.WithPredicates(ours)).
		// Tests run several webhook processes in one binary.
		WithOptions(controller.Options{SkipNameValidation: ptr.To(true)}).
		Complete(reconcile.Func(func(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
			var pcr certv1.PodCertificateRequest
			if err := mgr.GetClient().Get(ctx, req.NamespacedName, &pcr); err != nil {
				return reconcile.Result{}, client.IgnoreNotFound(err)
			}
			return reconcile.Result{}, s.Answer(ctx, &pcr)
		}))
}

// Answer decides one request and writes the answer to its status; a request already answered
// is left alone. Errors are lookups or writes that failed (the request is retried).
func (s *Signer) Answer(ctx context.Context, pcr *certv1.PodCertificateRequest) error {
	s.once.Do(s.defaults)
	if pcr.Spec.SignerName != contract.SignerName || answered(pcr) {
		return nil
	}
	now := s.Now().UTC().Truncate(time.Second) // certificates and the status carry seconds
	out := pcr.DeepCopy()
	cond := metav1.Condition{Status: metav1.ConditionTrue, LastTransitionTime: metav1.NewTime(now), ObservedGeneration: pcr.Generation}
	chain, lifetime, reason, msg, err := s.decide(ctx, pcr, now)
	if err != nil {
		return err
	}
	if reason == "" {
		cond.Type, cond.Reason, cond.Message = certv1.PodCertificateRequestConditionTypeIssued, "Issued", msg
		out.Status.CertificateChain = chain
		out.Status.NotBefore = &metav1.Time{Time: now}
		out.Status.NotAfter = &metav1.Time{Time: now.Add(lifetime)}
		out.Status.BeginRefreshAt = &metav1.Time{Time: now.Add(lifetime / 2)}
	} else {
		cond.Type, cond.Reason, cond.Message = certv1.PodCertificateRequestConditionTypeDenied, reason, msg
	}
	out.Status.Conditions = append(out.Status.Conditions, cond)
	if _, err := s.Kube.CertificatesV1().PodCertificateRequests(pcr.Namespace).UpdateStatus(ctx, out, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("podcert: answering %s/%s: %w", pcr.Namespace, pcr.Name, err)
	}
	result := "issued"
	if reason != "" {
		result = "denied"
	}
	s.results.WithLabelValues(result, reason).Inc()
	s.Log.Info("pod certificate "+result, "request", pcr.Namespace+"/"+pcr.Name, "pod", pcr.Namespace+"/"+pcr.Spec.PodName,
		"owner", pcr.Namespace+"/"+pcr.Spec.ServiceAccountName, "node", pcr.Spec.NodeName, "reason", reason, "message", msg)
	return nil
}

func answered(pcr *certv1.PodCertificateRequest) bool {
	for _, c := range pcr.Status.Conditions {
		switch c.Type {
		case certv1.PodCertificateRequestConditionTypeIssued, certv1.PodCertificateRequestConditionTypeDenied, certv1.PodCertificateRequestConditionTypeFailed:
			return true
		}
	}
	return false
}

// decide returns the chain and lifetime to issue, or the reason and message of a denial.
func (s *Signer) decide(ctx context.Context, pcr *certv1.PodCertificateRequest, now time.Time) (chain string, lifetime time.Duration, reason, msg string, err error) {
	spec := &pcr.Spec
	if len(spec.UnverifiedUserAnnotations) > 0 {
		return "", 0, ReasonUserConfig, "Warden's signer takes no userAnnotations; remove them from the podCertificate source", nil
	}
	pod, err := s.Kube.CoreV1().Pods(pcr.Namespace).Get(ctx, spec.PodName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return "", 0, ReasonPodGone, fmt.Sprintf("pod %s/%s no longer exists", pcr.Namespace, spec.PodName), nil
	case err != nil:
		return "", 0, "", "", fmt.Errorf("podcert: reading pod %s/%s: %w", pcr.Namespace, spec.PodName, err)
	}
	if v := samePod(pod, pcr); v != "" {
		return "", 0, ReasonPodMismatch, v, nil
	}
	inj, err := s.Rules.Trusted(ctx, s.Namespaces, pod)
	var lookup *guard.LookupError
	switch {
	case errors.As(err, &lookup):
		return "", 0, "", "", fmt.Errorf("podcert: %w", err)
	case err != nil:
		return "", 0, ReasonNotTrusted, fmt.Sprintf("pod %s/%s is not one Warden admitted as it runs: %v", pod.Namespace, pod.Name, err), nil
	}
	if !requested(pod, inj) {
		return "", 0, ReasonNotRequested, fmt.Sprintf("pod %s/%s does not ask for %s in Warden's %s volume (it was injected with token identity)", pod.Namespace, pod.Name, contract.SignerName, contract.VolumeToken), nil
	}
	csr, err := x509.ParseCertificateRequest(spec.StubPKCS10Request)
	if err != nil {
		return "", 0, ReasonInvalidCSR, "stubPKCS10Request does not parse: " + err.Error(), nil
	}
	lifetime = s.Lifetime
	if spec.MaxExpirationSeconds != nil {
		lifetime = min(lifetime, time.Duration(*spec.MaxExpirationSeconds)*time.Second)
	}
	lifetime = max(lifetime, MinLifetime)
	id := Identity{Namespace: pod.Namespace, ServiceAccount: spec.ServiceAccountName, Pod: pod.Name, PodUID: pod.UID}
	chain, err = s.Authority.Issue(csr.PublicKey, id, now, now.Add(lifetime))
	if errors.Is(err, ErrUnsupportedKey) {
		return "", 0, ReasonUnsupportedKT, "use keyType ECDSAP256 (Warden injects it): " + err.Error(), nil
	}
	if err != nil {
		return "", 0, "", "", err
	}
	return chain, lifetime, "", "issued to " + id.URI().String(), nil
}

// samePod says how the live pod differs from the one the request names ("" when it does not).
func samePod(pod *corev1.Pod, pcr *certv1.PodCertificateRequest) string {
	spec := &pcr.Spec
	sa := guard.ServiceAccount(pod)
	switch {
	case pod.UID != spec.PodUID:
		return fmt.Sprintf("pod %s/%s has uid %s, the request names %s", pod.Namespace, pod.Name, pod.UID, spec.PodUID)
	case string(spec.NodeName) == "" || pod.Spec.NodeName != string(spec.NodeName):
		return fmt.Sprintf("pod %s/%s runs on node %q, the request names %q", pod.Namespace, pod.Name, pod.Spec.NodeName, spec.NodeName)
	case sa != spec.ServiceAccountName:
		return fmt.Sprintf("pod %s/%s runs as %q, the request names %q", pod.Namespace, pod.Name, sa, spec.ServiceAccountName)
	case pod.DeletionTimestamp != nil:
		return fmt.Sprintf("pod %s/%s is being deleted", pod.Namespace, pod.Name)
	}
	return ""
}

// requested is whether the sealed token volume asks for a certificate from this signer.
func requested(pod *corev1.Pod, inj *guard.Injection) bool {
	for _, name := range inj.Status.Volumes {
		if name != contract.VolumeToken {
			continue
		}
		for _, v := range pod.Spec.Volumes {
			if v.Name != name || v.Projected == nil {
				continue
			}
			for _, src := range v.Projected.Sources {
				if src.PodCertificate != nil && src.PodCertificate.SignerName == contract.SignerName {
					return true
				}
			}
		}
	}
	return false
}

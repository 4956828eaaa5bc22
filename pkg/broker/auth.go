package broker

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/warden-dev/warden/pkg/contract"
	"github.com/warden-dev/warden/pkg/grants"
	"github.com/warden-dev/warden/pkg/guard"
)

// Who is calling: a sidecar's pod certificate (or, where allowed, its projected token) turned
// into the owner of a pod Warden admitted, with the same judgement as the admission webhooks
// (opted-in namespace, pod invariant with its seal).
//
// The certificate is the sidecar's identity: only the kubelet can obtain one (pkg/podcert), so
// no tenant, whatever their role in the namespace, can speak to the broker as a pod. A
// projected token is weaker: anyone with `create serviceaccounts/token` (the built-in edit and
// admin roles) can mint one for the owner bound to a running pod. Tokens are accepted only with
// Options.AcceptTokens, for clusters without pod certificates.

// authenticate turns the request's client certificate, or bearer token, into the owner of a
// Warden-injected pod. Verified identities are cached for TokenCacheTTL, keyed by the
// certificate or token, never longer than the certificate is valid.
func (s *Server) authenticate(ctx context.Context, r *http.Request) (verified, error) {
	var key [32]byte
	var verify func() (verified, error)
	switch {
	case r.TLS != nil && len(r.TLS.PeerCertificates) > 0 && s.opts.Certificates != nil:
		chain := r.TLS.PeerCertificates
		key = sha256.Sum256(chain[0].Raw)
		verify = func() (verified, error) {
			id, err := s.opts.Certificates.Verify(chain, time.Now())
			if err != nil {
				return verified{}, fmt.Errorf("%w: %v", errAuth, err)
			}
			v, err := s.verifyPod(ctx, id.Namespace, id.ServiceAccount, id.Pod, id.PodUID)
			v.until = chain[0].NotAfter
			return v, err
		}
	case !s.opts.AcceptTokens:
		return verified{}, fmt.Errorf("%w: present the sidecar's pod certificate (signer %s) over TLS; this broker accepts no service-account tokens", errAuth, contract.SignerName)
	default:
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || token == "" {
			return verified{}, fmt.Errorf("%w: present the sidecar's pod certificate over TLS, or send the pod's projected service-account token as 'Authorization: Bearer'", errAuth)
		}
		key = sha256.Sum256([]byte(token))
		verify = func() (verified, error) { return s.verifyToken(ctx, token) }
	}
	now := time.Now()
	if s.opts.TokenCacheTTL > 0 {
		s.mu.Lock()
		id, hit := s.cache[key]
		s.mu.Unlock()
		if hit && now.Sub(id.at) < s.opts.TokenCacheTTL && (id.until.IsZero() || now.Before(id.until)) {
			return id, nil
		}
	}
	id, err := verify()
	if err != nil {
		return id, err
	}
	if s.opts.TokenCacheTTL > 0 {
		s.mu.Lock()
		if len(s.cache) > 10000 {
			s.cache = map[[32]byte]verified{}
		}
		s.cache[key] = id
		s.mu.Unlock()
	}
	return id, nil
}

// verifyToken turns a projected token into its pod with a TokenReview.
func (s *Server) verifyToken(ctx context.Context, token string) (verified, error) {
	tr, err := s.opts.Kube.AuthenticationV1().TokenReviews().Create(ctx, &authnv1.TokenReview{
		Spec: authnv1.TokenReviewSpec{Token: token, Audiences: []string{s.opts.Audience}},
	}, metav1.CreateOptions{})
	if err != nil {
		return verified{}, fmt.Errorf("%w: token review: %v", grants.ErrUnavailable, err)
	}
	st := tr.Status
	if !st.Authenticated {
		return verified{}, fmt.Errorf("%w: token not accepted: %s", errAuth, st.Error)
	}
	if !slices.Contains(st.Audiences, s.opts.Audience) {
		return verified{}, fmt.Errorf("%w: token is not for audience %q", errAuth, s.opts.Audience)
	}
	rest, ok := strings.CutPrefix(st.User.Username, "system:serviceaccount:")
	ns, sa, ok2 := strings.Cut(rest, ":")
	if !ok || !ok2 || ns == "" || sa == "" {
		return verified{}, fmt.Errorf("%w: %q is not a service account", errAuth, st.User.Username)
	}
	podName, podUID := first(st.User.Extra[extraPodName]), first(st.User.Extra[extraPodUID])
	if podName == "" || podUID == "" {
		return verified{}, fmt.Errorf("%w: the token is not bound to a pod; use the projected token Warden mounts into the sidecar", errAuth)
	}
	return s.verifyPod(ctx, ns, sa, podName, types.UID(podUID))
}

// verifyPod checks that the pod a credential names is the live pod, runs as the credential's
// service account, and is trusted.
func (s *Server) verifyPod(ctx context.Context, ns, sa, podName string, podUID types.UID) (verified, error) {
	pod, err := s.opts.Kube.CoreV1().Pods(ns).Get(ctx, podName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return verified{}, fmt.Errorf("%w: pod %s/%s no longer exists", errAuth, ns, podName)
	case err != nil:
		return verified{}, fmt.Errorf("%w: reading pod %s/%s: %v", grants.ErrUnavailable, ns, podName, err)
	case pod.UID != podUID:
		return verified{}, fmt.Errorf("%w: pod %s/%s was replaced (uid %s, credential for %s)", errAuth, ns, podName, pod.UID, podUID)
	case guard.ServiceAccount(pod) != sa:
		return verified{}, fmt.Errorf("%w: pod %s/%s runs as %q, the credential is for %q", errAuth, ns, podName, pod.Spec.ServiceAccountName, sa)
	}
	if err := s.trusted(ctx, pod); err != nil {
		if errors.Is(err, grants.ErrUnavailable) {
			return verified{}, err
		}
		return verified{}, fmt.Errorf("%w: pod %s/%s: %v", errForbidden, ns, podName, err)
	}
	return verified{owner: ns + "/" + sa, pod: ns + "/" + podName, at: time.Now()}, nil
}

// trusted applies the admission webhooks' judgement to the live pod (guard.Rules.Trusted).
func (s *Server) trusted(ctx context.Context, pod *corev1.Pod) error {
	_, err := s.opts.Pods.Trusted(ctx, s.opts.Namespaces, pod)
	var lookup *guard.LookupError
	if errors.As(err, &lookup) {
		return fmt.Errorf("%w: %v", grants.ErrUnavailable, lookup.Err)
	}
	return err
}

func first(v authnv1.ExtraValue) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

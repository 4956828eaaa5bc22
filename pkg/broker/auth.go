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

	"github.com/warden-dev/warden/pkg/grants"
	"github.com/warden-dev/warden/pkg/guard"
)

// Who is calling: a sidecar token turned into the owner of a pod Warden admitted, with the
// same judgement as the admission webhooks (opted-in namespace, pod invariant with its seal).

// authenticate turns the request's bearer token into the owner of a Warden-injected pod.
func (s *Server) authenticate(ctx context.Context, r *http.Request) (verified, error) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		return verified{}, fmt.Errorf("%w: send the pod's projected service-account token as 'Authorization: Bearer'", errAuth)
	}
	key := sha256.Sum256([]byte(token))
	if s.opts.TokenCacheTTL > 0 {
		s.mu.Lock()
		id, hit := s.cache[key]
		s.mu.Unlock()
		if hit && time.Since(id.at) < s.opts.TokenCacheTTL {
			return id, nil
		}
	}
	id, err := s.verify(ctx, token)
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

func (s *Server) verify(ctx context.Context, token string) (verified, error) {
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
	pod, err := s.opts.Kube.CoreV1().Pods(ns).Get(ctx, podName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return verified{}, fmt.Errorf("%w: pod %s/%s no longer exists", errAuth, ns, podName)
	case err != nil:
		return verified{}, fmt.Errorf("%w: reading pod %s/%s: %v", grants.ErrUnavailable, ns, podName, err)
	case string(pod.UID) != podUID:
		return verified{}, fmt.Errorf("%w: pod %s/%s was replaced (uid %s, token for %s)", errAuth, ns, podName, pod.UID, podUID)
	case pod.Spec.ServiceAccountName != sa:
		return verified{}, fmt.Errorf("%w: pod %s/%s runs as %q, the token is for %q", errAuth, ns, podName, pod.Spec.ServiceAccountName, sa)
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

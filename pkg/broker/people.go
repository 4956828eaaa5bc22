package broker

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/warden-dev/warden/pkg/apis/warden/v1alpha1"
)

// People call the broker from outside any pod (a laptop, a workspace) with the bearer token of
// their kubeconfig (an OIDC token, an exec plugin's, a service account's): the API server
// vouches for who they are (TokenReview) and RBAC for what they may do (SubjectAccessReview),
// so what Warden lets a person do from outside is what the cluster's own roles say.

// person authenticates a request by its Kubernetes bearer token.
func (s *Server) person(ctx context.Context, r *http.Request) (authnv1.UserInfo, error) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		return authnv1.UserInfo{}, fmt.Errorf("%w: send your Kubernetes bearer token (Authorization: Bearer)", errAuth)
	}
	tr, err := s.opts.Kube.AuthenticationV1().TokenReviews().Create(ctx, &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: token}}, metav1.CreateOptions{})
	if err != nil {
		return authnv1.UserInfo{}, fmt.Errorf("%w: token review: %v", errUnavailable, err)
	}
	if !tr.Status.Authenticated {
		return authnv1.UserInfo{}, fmt.Errorf("%w: token not accepted: %s", errAuth, tr.Status.Error)
	}
	return tr.Status.User, nil
}

// ownerAccess is what a person asks to do with an owner: verb on owners/SUBRESOURCE in
// warden.dev, in the owner's namespace, named for its service account.
type ownerAccess struct {
	verb, subresource string
	namespace, name   string
}

func (a ownerAccess) String() string {
	return fmt.Sprintf("%s %s of owner %s/%s (RBAC: verb %s on owners/%s in %s, namespace %s, name %s)",
		a.verb, a.subresource, a.namespace, a.name, a.verb, a.subresource, v1alpha1.GroupVersion.Group, a.namespace, a.name)
}

// permit asks the API server whether user may do a.
func (s *Server) permit(ctx context.Context, user authnv1.UserInfo, a ownerAccess) error {
	return s.review(ctx, user, authzv1.ResourceAttributes{Namespace: a.namespace, Verb: a.verb,
		Resource: "owners", Subresource: a.subresource, Name: a.name}, a.String())
}

// permitNamed asks whether user may get a cluster-scoped warden.dev resource by name (asking
// what someone else may do: accesses/NAME).
func (s *Server) permitNamed(ctx context.Context, user authnv1.UserInfo, resource, name string) error {
	return s.review(ctx, user, authzv1.ResourceAttributes{Verb: "get", Resource: resource, Name: name},
		fmt.Sprintf("get %s/%s in %s (RBAC)", resource, name, v1alpha1.GroupVersion.Group))
}

// review is a SubjectAccessReview on a warden.dev resource with the user's groups, uid and
// extra, as the API server would authorize a request of theirs; what names the refusal.
func (s *Server) review(ctx context.Context, user authnv1.UserInfo, attrs authzv1.ResourceAttributes, what string) error {
	attrs.Group = v1alpha1.GroupVersion.Group
	sar := &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
		User: user.Username, Groups: user.Groups, UID: user.UID, Extra: extraOf(user), ResourceAttributes: &attrs,
	}}
	res, err := s.opts.Kube.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("%w: subject access review: %v", errUnavailable, err)
	}
	if !res.Status.Allowed {
		return fmt.Errorf("%w: %s may not %s", errForbidden, user.Username, what)
	}
	return nil
}

func extraOf(user authnv1.UserInfo) map[string]authzv1.ExtraValue {
	extra := make(map[string]authzv1.ExtraValue, len(user.Extra))
	for k, v := range user.Extra {
		extra[k] = authzv1.ExtraValue(v)
	}
	return extra
}

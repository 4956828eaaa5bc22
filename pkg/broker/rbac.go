package broker

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	authzv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	authzclient "k8s.io/client-go/kubernetes/typed/authorization/v1"

	"github.com/warden-dev/warden/pkg/grants"
	"github.com/warden-dev/warden/pkg/policy"
)

// RBAC resource that grants dataset reads: verb get on datasets.warden.dev, resource name = the
// dataset id. Admins grant with ordinary Roles and (Cluster)RoleBindings. (It lives with the
// broker, not in pkg/grants, so the sidecar does not link the Kubernetes client.)
const (
	RBACGroup    = "warden.dev"
	RBACResource = "datasets"
	RBACVerb     = "get"
)

var _ grants.Authorizer = (*RBACAuthorizer)(nil)

// RBACAuthorizer asks the API server (SubjectAccessReview) instead of the policy's reader lists.
// The review is made in the owner's namespace, so both ClusterRoleBindings and RoleBindings in
// that namespace count. The policy still says which datasets exist, where they live and which
// environments may have them. Answers are cached for TTL.
type RBACAuthorizer struct {
	SAR authzclient.SubjectAccessReviewInterface
	TTL time.Duration

	mu    sync.Mutex
	cache map[string]rbacAnswer
}

type rbacAnswer struct {
	allowed bool
	at      time.Time
}

func (a *RBACAuthorizer) OwnerCanRead(ctx context.Context, pol policy.View, owner, dataset string) (bool, error) {
	if !ownerInEnvironment(pol, owner, dataset) {
		return false, nil
	}
	ns, sa, _ := strings.Cut(owner, "/")
	return a.review(ctx, ns, "system:serviceaccount:"+ns+":"+sa,
		[]string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}, dataset)
}

func (a *RBACAuthorizer) CallerCanRead(ctx context.Context, pol policy.View, owner string, caller grants.Caller, dataset string) (bool, error) {
	if caller.ServiceAccount != "" {
		return a.OwnerCanRead(ctx, pol, caller.ServiceAccount, dataset)
	}
	// Reviewed in the owner's namespace, like the owner's own grant.
	ns, _, _ := strings.Cut(owner, "/")
	return a.review(ctx, ns, caller.User, append([]string{"system:authenticated"}, caller.Groups...), dataset)
}

// ownerInEnvironment applies the policy's environment restriction, which RBAC cannot express.
func ownerInEnvironment(pol policy.View, owner, dataset string) bool {
	o, ok := pol.Owner(owner)
	d, dok := pol.Dataset(dataset)
	if !ok || !dok {
		return false
	}
	if len(d.Environments) == 0 {
		return true
	}
	for _, e := range d.Environments {
		if e == o.Environment {
			return true
		}
	}
	return false
}

func (a *RBACAuthorizer) review(ctx context.Context, ns, user string, groups []string, dataset string) (bool, error) {
	key := ns + "\x00" + user + "\x00" + strings.Join(groups, ",") + "\x00" + dataset
	a.mu.Lock()
	if ans, ok := a.cache[key]; ok && time.Since(ans.at) < a.TTL {
		a.mu.Unlock()
		return ans.allowed, nil
	}
	a.mu.Unlock()
	sar, err := a.SAR.Create(ctx, &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
		User:   user,
		Groups: groups,
		ResourceAttributes: &authzv1.ResourceAttributes{
			Namespace: ns, Verb: RBACVerb, Group: RBACGroup, Resource: RBACResource, Name: dataset,
		},
	}}, metav1.CreateOptions{})
	if err != nil {
		return false, fmt.Errorf("%w: subject access review: %v", grants.ErrUnavailable, err)
	}
	a.mu.Lock()
	if a.cache == nil || len(a.cache) > 10000 {
		a.cache = map[string]rbacAnswer{}
	}
	a.cache[key] = rbacAnswer{allowed: sar.Status.Allowed, at: time.Now()}
	a.mu.Unlock()
	return sar.Status.Allowed, nil
}

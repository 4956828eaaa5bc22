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

// The RBAC permission that grants reading a dataset: verb "read" (a verb of Warden's own, not
// "get") on datasets.warden.dev, resource name = the dataset id, in the dataset's namespace (a
// Dataset object's), or cluster-wide for the policy file's datasets. (It lives with the broker,
// not in pkg/grants, so the sidecar does not link the Kubernetes client.)
//
// Why a verb of its own: the built-in admin, edit and view roles aggregate get/list/watch on
// datasets (reading the objects), and a namespace admin may bind any permission they hold.
// Nobody holds "read" unless a Warden admin granted it, so a namespace admin can neither grant
// it (RBAC's escalation check) nor hold it through aggregation. Why the dataset's namespace: a
// grant there can only come from whoever governs that dataset, never from the reader's own
// namespace admin. Delegation is manifests/base/policy-roles.yaml's warden-dataset-grantor.
const (
	RBACGroup    = "warden.dev"
	RBACResource = "datasets"
	RBACVerb     = "read"
)

var _ grants.Authorizer = (*RBACAuthorizer)(nil)

// RBACAuthorizer asks the API server (SubjectAccessReview) instead of the policy's reader lists.
// The policy still says which datasets exist, where they live and which environments may have
// them. Answers are cached for TTL.
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
	d, ok := ownerInEnvironment(pol, owner, dataset)
	if !ok {
		return false, nil
	}
	return a.serviceAccountCanRead(ctx, d, owner)
}

func (a *RBACAuthorizer) CallerCanRead(ctx context.Context, pol policy.View, owner string, caller grants.Caller, dataset string) (bool, error) {
	if caller.ServiceAccount != "" {
		return a.OwnerCanRead(ctx, pol, caller.ServiceAccount, dataset)
	}
	d, ok := pol.Dataset(dataset)
	if !ok {
		return false, nil
	}
	// Callers' names never hold ':' (grants.Caller's name rule), so a caller can never be, nor
	// claim a group of, Kubernetes' own identities (system:masters, system:serviceaccount:...).
	return a.review(ctx, d, caller.User, append([]string{"system:authenticated"}, caller.Groups...))
}

func (a *RBACAuthorizer) serviceAccountCanRead(ctx context.Context, d policy.Dataset, sa string) (bool, error) {
	ns, name, _ := strings.Cut(sa, "/")
	return a.review(ctx, d, "system:serviceaccount:"+ns+":"+name,
		[]string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"})
}

// ownerInEnvironment applies the policy's environment restriction, which RBAC cannot express.
func ownerInEnvironment(pol policy.View, owner, dataset string) (policy.Dataset, bool) {
	o, ok := pol.Owner(owner)
	d, dok := pol.Dataset(dataset)
	if !ok || !dok {
		return d, false
	}
	return d, d.AllowsEnvironment(o.Environment)
}

// review asks whether user may read d where d's grants live: its namespace, or cluster-wide
// (namespace "": only ClusterRoleBindings count) for the file's datasets.
func (a *RBACAuthorizer) review(ctx context.Context, d policy.Dataset, user string, groups []string) (bool, error) {
	ns, dataset := d.Namespace, d.ID
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

// Package identity binds a pod's Kubernetes service account to the GCP service account of an
// org it belongs to (GKE Workload Identity), on behalf of sidecars, from the broker: it adds the
// KSA's workload-identity member to roles/iam.workloadIdentityUser on the GCP service account
// and annotates the KSA with iam.gke.io/gcp-service-account; reset and the reconciler remove
// both. GCP credentials live in the broker only, never in tenant pods.
package identity

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"cloud.google.com/go/iam"
	admin "cloud.google.com/go/iam/admin/apiv1"
	"cloud.google.com/go/iam/apiv1/iampb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/util/wait"
)

// Role is the IAM role that lets a Kubernetes service account act as a GCP service account.
const Role = "roles/iam.workloadIdentityUser"

// Errors of IAM calls.
var (
	ErrIAMUnavailable = errors.New("GCP IAM is unavailable")
	ErrIAMDenied      = errors.New("GCP IAM refused the change")
	// ErrClusterUnavailable is a failed Kubernetes API call (records, annotations).
	ErrClusterUnavailable = errors.New("the Kubernetes API call failed")
)

// IAM is what Warden calls of the IAM admin API. *admin.IamClient implements it; tests dial the
// in-process fake with the same client.
type IAM interface {
	GetIamPolicy(ctx context.Context, req *iampb.GetIamPolicyRequest) (*iam.Policy, error)
	SetIamPolicy(ctx context.Context, req *admin.SetIamPolicyRequest) (*iam.Policy, error)
}

var _ IAM = (*admin.IamClient)(nil)

// Member is the workload-identity principal of a Kubernetes service account.
func Member(project, namespace, ksa string) string {
	return fmt.Sprintf("serviceAccount:%s.svc.id.goog[%s/%s]", project, namespace, ksa)
}

func resource(email string) string { return "projects/-/serviceAccounts/" + email }

// DefaultBackoff retries IAM etag conflicts: 7 tries within at most about 3 seconds, inside the
// sidecar's 5-second broker timeout, with enough jitter that concurrent writers spread out.
var DefaultBackoff = wait.Backoff{Duration: 25 * time.Millisecond, Factor: 2, Jitter: 1, Steps: 7}

// Policies edits service-account IAM policies with read-modify-write under etags.
type Policies struct {
	IAM     IAM
	Backoff wait.Backoff
}

// Ensure puts member into (present) or takes it out of the unconditional binding of Role on the
// GCP service account, and reports whether it wrote. It reads with policy version 3 (so
// conditional bindings come back intact), changes nothing but that one member (a binding left
// empty is removed), writes with the etag it read and starts over when IAM answers Aborted
// (another writer came first). Nothing changes when the member is already as asked: a second
// bind writes nothing.
func (p *Policies) Ensure(ctx context.Context, email, member string, present bool) (bool, error) {
	backoff := p.Backoff // Step mutates the backoff: every call needs its own copy
	if backoff.Steps == 0 {
		backoff = DefaultBackoff
	}
	for {
		pol, err := p.IAM.GetIamPolicy(ctx, &iampb.GetIamPolicyRequest{
			Resource: resource(email),
			Options:  &iampb.GetPolicyOptions{RequestedPolicyVersion: 3},
		})
		if err != nil {
			return false, classify(email, err)
		}
		if !setMember(pol.InternalProto, member, present) {
			return false, nil
		}
		pol.InternalProto.Version = 3
		_, err = p.IAM.SetIamPolicy(ctx, &admin.SetIamPolicyRequest{Resource: resource(email), Policy: pol})
		if err == nil {
			return true, nil
		}
		if status.Code(err) != codes.Aborted || backoff.Steps <= 1 {
			return false, classify(email, err)
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(backoff.Step()):
		}
	}
}

// setMember edits the unconditional Role binding in place and reports whether it changed.
// Conditional bindings and other members are never touched.
func setMember(p *iampb.Policy, member string, present bool) bool {
	i := slices.IndexFunc(p.Bindings, func(b *iampb.Binding) bool { return b.Role == Role && b.Condition == nil })
	switch {
	case present && i < 0:
		p.Bindings = append(p.Bindings, &iampb.Binding{Role: Role, Members: []string{member}})
		return true
	case present && slices.Contains(p.Bindings[i].Members, member):
		return false
	case present:
		p.Bindings[i].Members = append(p.Bindings[i].Members, member)
		return true
	case i < 0 || !slices.Contains(p.Bindings[i].Members, member):
		return false
	}
	b := p.Bindings[i]
	b.Members = slices.DeleteFunc(b.Members, func(m string) bool { return m == member })
	if len(b.Members) == 0 {
		p.Bindings = slices.Delete(p.Bindings, i, i+1)
	}
	return true
}

func classify(email string, err error) error {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Aborted, codes.Canceled:
		return fmt.Errorf("%w: %s: %v", ErrIAMUnavailable, email, status.Convert(err).Message())
	case codes.PermissionDenied, codes.NotFound, codes.Unauthenticated:
		return fmt.Errorf("%w: %s: %v (does the account exist, and may the broker's identity get and set its IAM policy?)", ErrIAMDenied, email, status.Convert(err).Message())
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return fmt.Errorf("%w: %s: %v", ErrIAMUnavailable, email, err)
	}
	return fmt.Errorf("IAM %s: %w", email, err)
}

// NewIAMClient connects to the IAM admin API: Google's endpoint with Application Default
// Credentials (on GKE, the broker's own workload identity) by default; endpoint and insecure
// point it at a local server without credentials (tests, the demo).
func NewIAMClient(ctx context.Context, endpoint string, insecureLocal bool) (*admin.IamClient, error) {
	var opts []option.ClientOption
	if endpoint != "" {
		opts = append(opts, option.WithEndpoint(endpoint))
	}
	if insecureLocal {
		opts = append(opts, option.WithoutAuthentication(),
			option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	}
	return admin.NewIamClient(ctx, opts...)
}

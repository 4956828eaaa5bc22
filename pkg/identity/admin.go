package identity

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/warden-dev/warden/pkg/policy"
)

// OrgAdmin changes an org's GCP service account in the policy ConfigMap (the seed's
// map_org_to_gcp_sa). It edits the YAML in place, so comments and layout survive, validates the
// result as a policy, and writes it back only if nobody changed the ConfigMap meanwhile. The
// kubelet then updates the mounted file and every replica reloads it.
type OrgAdmin struct {
	Kube      kubernetes.Interface
	Namespace string
	ConfigMap string
	Key       string // default policy.yaml
}

// SetOrgAccount points org at gsa.
func (a *OrgAdmin) SetOrgAccount(ctx context.Context, org, gsa string) error {
	key := a.Key
	if key == "" {
		key = "policy.yaml"
	}
	return retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		cm, err := a.Kube.CoreV1().ConfigMaps(a.Namespace).Get(ctx, a.ConfigMap, metav1.GetOptions{})
		if err != nil {
			if apierrors.IsNotFound(err) {
				return fmt.Errorf("policy ConfigMap %s/%s not found", a.Namespace, a.ConfigMap)
			}
			return err
		}
		edited, err := policy.SetOrgAccount([]byte(cm.Data[key]), org, gsa)
		if errors.Is(err, policy.ErrNoSuchOrg) {
			return fmt.Errorf("%w: %v", ErrUnknownOrg, err)
		}
		if err != nil {
			return err
		}
		if _, err := policy.Parse(edited); err != nil {
			return fmt.Errorf("%w: the edited policy would be invalid: %v", ErrBadEdit, err)
		}
		cm.Data[key] = string(edited)
		_, err = a.Kube.CoreV1().ConfigMaps(a.Namespace).Update(ctx, cm, metav1.UpdateOptions{})
		return err
	})
}

// ErrBadEdit is returned when the new mapping would make the policy invalid.
var ErrBadEdit = errors.New("bad org mapping")

package identity

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"sigs.k8s.io/controller-runtime/pkg/client"

	wardenv1 "github.com/warden-dev/warden/pkg/apis/warden/v1alpha1"
	"github.com/warden-dev/warden/pkg/policy"
)

// OrgAdmin changes an org's GCP service account (the seed's map_org_to_gcp_sa) where the org is
// defined: in the policy ConfigMap, or as an Org object. In the ConfigMap it edits the YAML in
// place, so comments and layout survive, validates the result as a policy, and writes it back
// only if nobody changed the ConfigMap meanwhile; the kubelet then updates the mounted file and
// every replica reloads it. An Org object is patched, guarded by its resource version.
type OrgAdmin struct {
	Kube      kubernetes.Interface
	Namespace string
	ConfigMap string
	Key       string // default policy.yaml
	// Objects edits Org objects (nil: the ConfigMap only).
	Objects client.Client
}

// SetOrgAccount points org at gsa and returns the account it pointed at before ("" when the
// policy file did not parse before the edit). The file wins, as everywhere: an org the ConfigMap
// defines is edited there even if an Org object of that name exists.
func (a *OrgAdmin) SetOrgAccount(ctx context.Context, org, gsa string) (previous string, err error) {
	previous, err = a.setInConfigMap(ctx, org, gsa)
	if a.Objects == nil || !(errors.Is(err, ErrUnknownOrg) || errors.Is(err, errNoConfigMap)) {
		return previous, err
	}
	if err := policy.ValidGCPServiceAccount(gsa); err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadEdit, err)
	}
	err = retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		var o wardenv1.Org
		if err := a.Objects.Get(ctx, client.ObjectKey{Name: org}, &o); err != nil {
			if apierrors.IsNotFound(err) {
				return fmt.Errorf("%w: %q is neither in the policy file nor an Org object", ErrUnknownOrg, org)
			}
			return fmt.Errorf("%w: reading Org %s: %v", ErrClusterUnavailable, org, err)
		}
		previous = o.Spec.GCPServiceAccount
		edited := o.DeepCopy() // the cache hands out its own object
		edited.Spec.GCPServiceAccount = gsa
		return a.Objects.Patch(ctx, edited, client.MergeFromWithOptions(&o, client.MergeFromWithOptimisticLock{}))
	})
	if err != nil {
		return "", err
	}
	return previous, nil
}

var errNoConfigMap = errors.New("no policy ConfigMap")

func (a *OrgAdmin) setInConfigMap(ctx context.Context, org, gsa string) (string, error) {
	if a.ConfigMap == "" {
		return "", errNoConfigMap
	}
	key := a.Key
	if key == "" {
		key = "policy.yaml"
	}
	var previous string
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		cm, err := a.Kube.CoreV1().ConfigMaps(a.Namespace).Get(ctx, a.ConfigMap, metav1.GetOptions{})
		if err != nil {
			if apierrors.IsNotFound(err) {
				return fmt.Errorf("%w: %s/%s not found", errNoConfigMap, a.Namespace, a.ConfigMap)
			}
			return err
		}
		doc := []byte(cm.Data[key])
		edited, err := policy.SetOrgAccount(doc, org, gsa)
		if errors.Is(err, policy.ErrNoSuchOrg) {
			return fmt.Errorf("%w: %v", ErrUnknownOrg, err)
		}
		if err != nil {
			return err
		}
		if _, err := policy.Parse(edited); err != nil {
			return fmt.Errorf("%w: the edited policy would be invalid: %v", ErrBadEdit, err)
		}
		previous = orgAccount(doc, org)
		cm.Data[key] = string(edited)
		_, err = a.Kube.CoreV1().ConfigMaps(a.Namespace).Update(ctx, cm, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return "", err
	}
	return previous, nil
}

// orgAccount is org's GCP service account in a policy document; "" when the document does not
// parse (an edit may be what makes it valid again).
func orgAccount(doc []byte, org string) string {
	p, err := policy.Parse(doc)
	if err != nil {
		return ""
	}
	o, _ := p.IsOrgMember(org, policy.Principal{})
	return o.GCPServiceAccount
}

// ErrBadEdit is returned when the new mapping would make the policy invalid.
var ErrBadEdit = errors.New("bad org mapping")

package identity

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"go.yaml.in/yaml/v3"

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
		edited, err := setOrgAccount([]byte(cm.Data[key]), org, gsa)
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

func setOrgAccount(doc []byte, org, gsa string) ([]byte, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(doc, &root); err != nil {
		return nil, fmt.Errorf("policy ConfigMap holds invalid YAML: %w", err)
	}
	if len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%w %q: the policy has no orgs", ErrUnknownOrg, org)
	}
	orgs := mapValue(root.Content[0], "orgs")
	if orgs == nil || orgs.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("%w %q: the policy has no orgs", ErrUnknownOrg, org)
	}
	found := false
	for _, item := range orgs.Content {
		if n := mapValue(item, "name"); n != nil && n.Value == org {
			v := mapValue(item, "gcpServiceAccount")
			if v == nil {
				item.Content = append(item.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: "gcpServiceAccount"}, &yaml.Node{Kind: yaml.ScalarNode, Value: gsa})
			} else {
				v.Value, v.Tag, v.Style = gsa, "!!str", 0
			}
			found = true
		}
	}
	if !found {
		return nil, fmt.Errorf("%w %q in the policy", ErrUnknownOrg, org)
	}
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(&root); err != nil {
		return nil, err
	}
	return out.Bytes(), enc.Close()
}

func mapValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

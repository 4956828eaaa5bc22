package policy

import (
	"bytes"
	"errors"
	"fmt"

	"go.yaml.in/yaml/v3"
)

// ErrNoSuchOrg is returned by SetOrgAccount for an org the document does not list.
var ErrNoSuchOrg = errors.New("no such org")

// SetOrgAccount points org at another GCP service account in a policy document, editing the
// YAML in place so comments and layout survive. It does not validate the result: Parse does.
func SetOrgAccount(doc []byte, org, gsa string) ([]byte, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(doc, &root); err != nil {
		return nil, fmt.Errorf("invalid YAML: %w", err)
	}
	if len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%w %q: the policy has no orgs", ErrNoSuchOrg, org)
	}
	orgs := topValue(&root, "orgs")
	if orgs == nil || orgs.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("%w %q: the policy has no orgs", ErrNoSuchOrg, org)
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
		return nil, fmt.Errorf("%w %q in the policy", ErrNoSuchOrg, org)
	}
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(&root); err != nil {
		return nil, err
	}
	return out.Bytes(), enc.Close()
}

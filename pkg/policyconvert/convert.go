// Package policyconvert turns a policy file into the objects that express it (`warden policy
// convert FILE`): one Owner per owner, one Group per group, one Org per org (its spaces as
// Space objects, the storage roles as StoragePolicy "default"), and the datasets as
// Datasets in one namespace whose snapshot root is the share's root, so that every snapshot path
// stays what the file said.
package policyconvert

import (
	"bytes"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	wardenv1 "github.com/warden-dev/warden/pkg/apis/warden/v1alpha1"
	"github.com/warden-dev/warden/pkg/contract"
	"github.com/warden-dev/warden/pkg/policy"
)

// DefaultNamespace holds the converted Datasets.
const DefaultNamespace = "warden-datasets"

// Objects are the objects that express a policy, in the order to apply them.
func Objects(p *policy.Policy, namespace string) ([]runtime.Object, error) {
	if namespace == "" {
		namespace = DefaultNamespace
	}
	out := []runtime.Object{&corev1.Namespace{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{Name: namespace, Annotations: map[string]string{contract.AnnotationSnapshotRoot: "."}},
	}}
	meta := func(kind string) metav1.TypeMeta {
		return metav1.TypeMeta{APIVersion: wardenv1.GroupVersion.String(), Kind: kind}
	}
	for _, o := range p.Owners {
		out = append(out, &wardenv1.Owner{
			TypeMeta:   meta("Owner"),
			ObjectMeta: metav1.ObjectMeta{Name: strings.Replace(o.ServiceAccount, "/", ".", 1)},
			Spec:       wardenv1.OwnerSpec{ServiceAccount: o.ServiceAccount, Environment: wardenv1.Environment(o.Environment), User: o.User},
		})
	}
	groups := make([]string, 0, len(p.Groups))
	for name := range p.Groups {
		groups = append(groups, name)
	}
	sort.Strings(groups)
	for _, name := range groups {
		if err := validName(name); err != nil {
			return nil, fmt.Errorf("group %q: %w", name, err)
		}
		out = append(out, &wardenv1.Group{TypeMeta: meta("Group"), ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: wardenv1.GroupSpec{Users: p.Groups[name]}})
	}
	for _, o := range p.Orgs {
		org := &wardenv1.Org{TypeMeta: meta("Org"), ObjectMeta: metav1.ObjectMeta{Name: o.Name},
			Spec: wardenv1.OrgSpec{GCPServiceAccount: o.GCPServiceAccount}}
		for _, m := range o.Members {
			org.Spec.Members = append(org.Spec.Members, wardenv1.Member(m))
		}
		out = append(out, org)
		if o.Storage == nil {
			continue
		}
		org.Spec.Storage = &wardenv1.OrgStorage{Access: members(o.Storage.Access), RoleGrants: grants(o.Storage.RoleGrants), Topic: o.Storage.Topic}
		for _, sp := range o.Storage.Spaces {
			out = append(out, &wardenv1.Space{TypeMeta: meta("Space"), ObjectMeta: metav1.ObjectMeta{Name: o.Name + "." + sp.Name},
				Spec: wardenv1.SpaceSpec{Org: o.Name, Bucket: sp.Bucket, Prefix: sp.Prefix, Visibility: wardenv1.Visibility(sp.Visibility),
					LoadingZone: sp.LoadingZone, RoleGrants: grants(sp.RoleGrants)}})
		}
	}
	if r := p.Storage; len(r.Admins)+len(r.AllPublic.Orgs)+len(r.AllPublic.Spaces) > 0 {
		out = append(out, &wardenv1.StoragePolicy{TypeMeta: meta("StoragePolicy"), ObjectMeta: metav1.ObjectMeta{Name: "default"},
			Spec: wardenv1.StoragePolicySpec{Admins: members(r.Admins),
				AllPublic: wardenv1.AllPublic{Orgs: members(r.AllPublic.Orgs), Spaces: members(r.AllPublic.Spaces)}}})
	}
	for _, d := range p.Datasets {
		// Object names are DNS subdomains: a file id with upper case or '_' cannot be one.
		if err := validName(d.ID); err != nil {
			return nil, fmt.Errorf("dataset %q cannot be an object name (%v); rename it in the file first", d.ID, err)
		}
		ds := &wardenv1.Dataset{TypeMeta: meta("Dataset"), ObjectMeta: metav1.ObjectMeta{Name: d.ID, Namespace: namespace},
			Spec: wardenv1.DatasetSpec{Snapshot: wardenv1.SnapshotDir(d.Snapshot)}}
		if len(d.Snapshots) > 0 {
			ds.Spec.Snapshots = map[string]wardenv1.SnapshotDir{}
			for name, dir := range d.Snapshots {
				ds.Spec.Snapshots[name] = wardenv1.SnapshotDir(dir)
			}
		}
		for _, e := range d.Environments {
			ds.Spec.Environments = append(ds.Spec.Environments, wardenv1.Environment(e))
		}
		for _, r := range d.Readers {
			ds.Spec.Readers = append(ds.Spec.Readers, wardenv1.Member(r))
		}
		out = append(out, ds)
	}
	return out, nil
}

func members(in []string) []wardenv1.Member {
	var out []wardenv1.Member
	for _, m := range in {
		out = append(out, wardenv1.Member(m))
	}
	return out
}

func grants(g policy.RoleGrants) wardenv1.RoleGrants {
	return wardenv1.RoleGrants{Users: members(g.Users), Suppliers: members(g.Suppliers), Trustees: members(g.Trustees)}
}

// validName checks a Kubernetes object name (lower-case RFC 1123 subdomain).
func validName(s string) error {
	if len(s) > 253 || s != strings.ToLower(s) || strings.ContainsAny(s, "_@+ ") || strings.HasPrefix(s, ".") || strings.HasSuffix(s, ".") {
		return fmt.Errorf("%q is not a lower-case DNS subdomain", s)
	}
	return nil
}

// YAML renders the objects as one multi-document YAML stream for kubectl apply, with a header
// that says what the objects cannot carry (the GCP project is a webhook flag).
func YAML(p *policy.Policy, objs []runtime.Object) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("# Warden policy objects converted from a policy file (warden policy convert).\n")
	if p.GCP.Project != "" {
		fmt.Fprintf(&b, "# gcp.project %q is not an object: start the webhook with --gcp-project=%s\n", p.GCP.Project, p.GCP.Project)
	}
	for _, o := range objs {
		y, err := yaml.Marshal(o)
		if err != nil {
			return nil, err
		}
		b.WriteString("---\n")
		b.Write(stripEmpty(y))
	}
	return b.Bytes(), nil
}

// stripEmpty drops the empty status and creation timestamp marshalling leaves behind.
func stripEmpty(y []byte) []byte {
	var keep []string
	for _, l := range strings.Split(string(y), "\n") {
		if l == "status: {}" || l == "spec: {}" || strings.TrimSpace(l) == "creationTimestamp: null" {
			continue
		}
		keep = append(keep, l)
	}
	return []byte(strings.Join(keep, "\n"))
}

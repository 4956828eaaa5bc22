// Package clusterpolicy is Warden's policy read from the cluster: Owner, Dataset, Group and Org
// objects (pkg/apis/warden/v1alpha1) through controller-runtime's cache, with field indexes so
// that admission and listings look up instead of scanning, merged with the policy file when an
// installation keeps one. The file wins: a name it defines (owner service account, dataset id,
// group, org) cannot be redefined by an object. A controller reports on every object whether it
// is in force (condition Accepted); an object that is not never grants anything.
package clusterpolicy

import (
	"errors"
	"fmt"
	"path"
	"strings"

	wardenv1 "github.com/warden-dev/warden/pkg/apis/warden/v1alpha1"
	"github.com/warden-dev/warden/pkg/contract"
	"github.com/warden-dev/warden/pkg/policy"
)

// The field indexes registered on the manager's cache.
const (
	// indexReader maps a Dataset to its readers ("user:ann", "group:g", "serviceAccount:ns/sa").
	indexReader = "warden.dev/reader"
	// indexID maps a Dataset to its id's bucket (idBucket of its name), across namespaces.
	indexID = "warden.dev/id-bucket"
	// indexMember maps an Org to its members.
	indexMember = "warden.dev/member"
	// indexUser maps a Group to its users.
	indexUser = "warden.dev/user"
)

// The checks below are the policy file's own rules (pkg/policy) applied to one object. The CRD
// schemas enforce most of them at the API; these hold even if a schema was loosened.

func ownerOf(o *wardenv1.Owner) (policy.Owner, error) {
	out := policy.Owner{ServiceAccount: o.Spec.ServiceAccount, Environment: policy.Environment(o.Spec.Environment), User: o.Spec.User}
	var errs []error
	if err := policy.ValidServiceAccount(out.ServiceAccount); err != nil {
		errs = append(errs, err)
	} else if o.Name != strings.Replace(out.ServiceAccount, "/", ".", 1) {
		errs = append(errs, fmt.Errorf("an Owner is named after its service account: %s", strings.Replace(out.ServiceAccount, "/", ".", 1)))
	}
	if err := out.Environment.Check(); err != nil {
		errs = append(errs, err)
	}
	if out.User != "" {
		if err := policy.ValidUser(out.User); err != nil {
			errs = append(errs, err)
		}
	}
	return out, errors.Join(errs...)
}

// datasetOf checks a Dataset on its own (its namespace's snapshot root is applied by resolve).
func datasetOf(d *wardenv1.Dataset) (policy.Dataset, error) {
	out := policy.Dataset{ID: d.Name, Snapshot: string(d.Spec.Snapshot), Namespace: d.Namespace}
	var errs []error
	if err := policy.ValidDatasetID(d.Name); err != nil {
		errs = append(errs, err)
	}
	if err := policy.ValidSnapshotDir(out.Snapshot); err != nil {
		errs = append(errs, err)
	}
	if len(d.Spec.Snapshots) > 0 {
		out.Snapshots = make(map[string]string, len(d.Spec.Snapshots))
		for name, dir := range d.Spec.Snapshots {
			if err := policy.ValidDatasetID(name); err != nil {
				errs = append(errs, fmt.Errorf("snapshot name: %w", err))
			}
			if err := policy.ValidSnapshotDir(string(dir)); err != nil {
				errs = append(errs, fmt.Errorf("snapshots.%s: %w", name, err))
			}
			out.Snapshots[name] = string(dir)
		}
	}
	for _, e := range d.Spec.Environments {
		env := policy.Environment(e)
		if err := env.Check(); err != nil {
			errs = append(errs, err)
		}
		out.Environments = append(out.Environments, env)
	}
	for _, r := range d.Spec.Readers {
		out.Readers = append(out.Readers, string(r))
	}
	out, err := out.WithMembers()
	if err != nil {
		errs = append(errs, err)
	}
	return out, errors.Join(errs...)
}

// rooted puts a dataset's snapshot directories under its namespace's snapshot root.
func rooted(d policy.Dataset, root string) (policy.Dataset, error) {
	if root != "." {
		if err := policy.ValidSnapshotDir(root); err != nil {
			return d, fmt.Errorf("annotation %s: %w", contract.AnnotationSnapshotRoot, err)
		}
	}
	d.Snapshot = path.Join(root, d.Snapshot)
	if len(d.Snapshots) > 0 {
		s := make(map[string]string, len(d.Snapshots))
		for name, dir := range d.Snapshots {
			s[name] = path.Join(root, dir)
		}
		d.Snapshots = s
	}
	return d, nil
}

func groupOf(g *wardenv1.Group) ([]string, error) {
	var errs []error
	for _, u := range g.Spec.Users {
		if err := policy.ValidUser(u); err != nil {
			errs = append(errs, err)
		}
	}
	if err := policy.ValidUser(g.Name); err != nil {
		errs = append(errs, fmt.Errorf("group name: %w", err))
	}
	return g.Spec.Users, errors.Join(errs...)
}

func orgOf(o *wardenv1.Org) (policy.Org, []policy.Member, error) {
	out := policy.Org{Name: o.Name, GCPServiceAccount: o.Spec.GCPServiceAccount}
	var errs []error
	if err := policy.ValidOrgName(o.Name); err != nil {
		errs = append(errs, err)
	}
	if err := policy.ValidGCPServiceAccount(o.Spec.GCPServiceAccount); err != nil {
		errs = append(errs, err)
	}
	members := make([]policy.Member, 0, len(o.Spec.Members))
	for _, m := range o.Spec.Members {
		pm, err := policy.ParseMember(string(m))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		members = append(members, pm)
		out.Members = append(out.Members, string(m))
	}
	return out, members, errors.Join(errs...)
}

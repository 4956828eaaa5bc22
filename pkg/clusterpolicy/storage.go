package clusterpolicy

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	wardenv1 "github.com/warden-dev/warden/pkg/apis/warden/v1alpha1"
	"github.com/warden-dev/warden/pkg/policy"
)

// indexBucket maps a valid Space to its bucket (overlap checks look up the spaces of a bucket).
const indexBucket = "warden.dev/bucket"

func members(in []wardenv1.Member) []string {
	out := make([]string, len(in))
	for i, m := range in {
		out[i] = string(m)
	}
	return out
}

func grantsOf(g wardenv1.RoleGrants) (policy.RoleGrants, error) {
	return policy.RoleGrants{Users: members(g.Users), Suppliers: members(g.Suppliers), Trustees: members(g.Trustees)}.Parsed()
}

// orgStorageOf is an Org object's storage settings (none: empty), members parsed.
func orgStorageOf(o *wardenv1.Org) (policy.OrgStorage, error) {
	if o.Spec.Storage == nil {
		return policy.OrgStorage{}, nil
	}
	st := o.Spec.Storage
	out := policy.OrgStorage{Access: members(st.Access), Topic: st.Topic}
	out.Users, out.Suppliers, out.Trustees = members(st.Users), members(st.Suppliers), members(st.Trustees)
	var errs []error
	if st.Topic != "" {
		if err := policy.ValidTopic(st.Topic); err != nil {
			errs = append(errs, err)
		}
	}
	out, err := out.WithMembers()
	if err != nil {
		errs = append(errs, fmt.Errorf("storage: %w", err))
	}
	return out, errors.Join(errs...)
}

// spaceOf checks a Space object on its own (its org and overlaps are the view's business).
func spaceOf(s *wardenv1.Space) (policy.Space, error) {
	name, ok := strings.CutPrefix(s.Name, s.Spec.Org+".")
	out := policy.Space{Name: name, Bucket: s.Spec.Bucket, Prefix: s.Spec.Prefix,
		Visibility: policy.Visibility(s.Spec.Visibility), LoadingZone: s.Spec.LoadingZone}
	var errs []error
	if !ok {
		errs = append(errs, fmt.Errorf("a Space is named ORG.SPACE: %s.NAME", s.Spec.Org))
	}
	if err := policy.ValidOrgName(s.Spec.Org); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, policy.SpaceErrors(out)...)
	g, err := grantsOf(s.Spec.RoleGrants)
	if err != nil {
		errs = append(errs, err)
	}
	out.RoleGrants = g
	return out, errors.Join(errs...)
}

func storagePolicyOf(p *wardenv1.StoragePolicy) (policy.StorageRoles, error) {
	return policy.StorageRoles{
		Admins:    members(p.Spec.Admins),
		AllPublic: policy.AllPublic{Orgs: members(p.Spec.AllPublic.Orgs), Spaces: members(p.Spec.AllPublic.Spaces)},
	}.WithMembers()
}

// orgInForce is the org named org and its storage: the file's when the file defines it, else
// the Org object's when valid.
func (v *view) orgInForce(org string) (policy.Org, policy.OrgStorage, bool) {
	if v.file != nil {
		for _, o := range v.file.Orgs {
			if o.Name == org {
				if o.Storage != nil {
					return o, *o.Storage, true
				}
				return o, policy.OrgStorage{}, true
			}
		}
	}
	obj := v.s.org(org)
	if obj == nil {
		return policy.Org{}, policy.OrgStorage{}, false
	}
	o, _, err := orgOf(obj)
	if err != nil {
		return policy.Org{}, policy.OrgStorage{}, false
	}
	st, err := orgStorageOf(obj)
	if err != nil {
		return policy.Org{}, policy.OrgStorage{}, false
	}
	return o, st, true
}

// StorageSpace implements policy.StorageView: the file's space when it defines it, else the
// Space object ORG.SPACE when it is in force (see spaceStanding).
func (v *view) StorageSpace(org, space string) (policy.StorageSpace, bool) {
	if v.file != nil {
		if sp, ok := v.file.StorageSpace(org, space); ok {
			return sp, true
		}
	}
	obj := v.s.space(org + "." + space)
	if obj == nil || obj.Spec.Org != org {
		return policy.StorageSpace{}, false
	}
	sp, err := v.spaceStanding(obj)
	return sp, err == nil
}

// StorageSpaces implements policy.StorageView: the file's spaces, then the Space objects in
// force, by name.
func (v *view) StorageSpaces() []policy.StorageSpace {
	var out []policy.StorageSpace
	if v.file != nil {
		out = v.file.StorageSpaces()
	}
	objs := v.s.spaceObjects()
	slices.SortFunc(objs, func(a, b *wardenv1.Space) int { return strings.Compare(a.Name, b.Name) })
	for _, obj := range objs {
		// spaceStanding refuses a Space the file also defines (listed above) or overlaps.
		if sp, err := v.spaceStanding(obj); err == nil {
			out = append(out, sp)
		}
	}
	return out
}

// errSpaceConflict and errUnknownOrg say why a valid Space object is not in force.
var (
	errSpaceConflict = errors.New("space conflict")
	errUnknownOrg    = errors.New("unknown org")
)

// spaceStanding decides whether a Space object is in force: valid, its org in force, and
// overlapping no space of the file and no older Space object (two spaces never share objects).
// The error wraps errSpaceConflict or errUnknownOrg when the object is valid but not in force.
func (v *view) spaceStanding(obj *wardenv1.Space) (policy.StorageSpace, error) {
	sp, err := v.s.spaces.space(obj)
	if err != nil {
		return policy.StorageSpace{}, err
	}
	if v.file != nil {
		if _, ok := v.file.StorageSpace(obj.Spec.Org, sp.Name); ok {
			return policy.StorageSpace{}, fmt.Errorf("%w: the policy file defines space %s/%s; the file wins", errSpaceConflict, obj.Spec.Org, sp.Name)
		}
		for _, o := range v.file.Orgs {
			if o.Storage == nil {
				continue
			}
			for _, fs := range o.Storage.Spaces {
				if policy.Overlap(sp, fs) {
					return policy.StorageSpace{}, fmt.Errorf("%w: overlaps space %s/%s of the policy file (gs://%s/%s)", errSpaceConflict, o.Name, fs.Name, fs.Bucket, fs.Prefix)
				}
			}
		}
	}
	for _, other := range v.s.spacesBy(indexBucket, sp.Bucket) {
		if other.Name == obj.Name || !other.DeletionTimestamp.IsZero() || !olderSpace(other, obj) {
			continue
		}
		os, err := v.s.spaces.space(other)
		if err == nil && policy.Overlap(sp, os) {
			return policy.StorageSpace{}, fmt.Errorf("%w: overlaps Space %s (created first; gs://%s/%s)", errSpaceConflict, other.Name, os.Bucket, os.Prefix)
		}
	}
	org, st, ok := v.orgInForce(obj.Spec.Org)
	if !ok {
		return policy.StorageSpace{}, fmt.Errorf("%w: org %s is not in force (no valid Org object and not in the policy file)", errUnknownOrg, obj.Spec.Org)
	}
	return policy.StorageSpace{Org: org, Store: st, Space: sp}, nil
}

// StorageRoles implements policy.StorageView: the file's, with every valid StoragePolicy's
// members added.
func (v *view) StorageRoles() policy.StorageRoles {
	var out policy.StorageRoles
	if v.file != nil {
		out = v.file.StorageRoles()
	}
	for _, p := range v.s.storagePolicies() {
		if r, err := storagePolicyOf(p); err == nil {
			out = out.Merge(r)
		}
	}
	return out
}

// Holds implements policy.StorageView with both sources' groups.
func (v *view) Holds(members []policy.Member, who policy.Principal) bool {
	return v.matchesAny(members, who)
}

// olderSpace orders Spaces by creation, then name: of two overlapping Spaces created in the same
// second, exactly one is first.
func olderSpace(a, b *wardenv1.Space) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.Name < b.Name
}

package clusterpolicy

import (
	"unique"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	wardenv1 "github.com/warden-dev/warden/pkg/apis/warden/v1alpha1"
)

// Transform is applied to every Warden object before the cache stores it. At 50,000 Datasets
// the cache is most of the webhook's memory, so it keeps one copy of each string that repeats
// across objects and nothing Warden never reads:
//
//   - managedFields, annotations and labels are dropped: nothing reads them from the cache
//     (kubectl's last-applied-configuration alone is a second copy of the object), and a status
//     write ignores all but the status (the API server keeps the stored metadata).
//   - readers, members, users, environments, the namespace, the kind and the status condition's
//     strings are interned: a reader is named by ~100 Datasets, and every accepted object says
//     "Accepted", "True", "in force". The values are unchanged, so is every answer. Their lists
//     are cut to their length.
//
// Everything else the view and the status writer read is kept as it came: name, namespace, uid
// and resourceVersion (the parse cache, conflicts on status writes), generation, creation and
// deletion timestamps, spec and status. The function is idempotent, as client-go requires.
func Transform(in any) (any, error) {
	switch o := in.(type) {
	case *wardenv1.Owner:
		common(&o.TypeMeta, &o.ObjectMeta, &o.Status)
		o.Spec.Environment = internS(o.Spec.Environment)
	case *wardenv1.Dataset:
		common(&o.TypeMeta, &o.ObjectMeta, &o.Status)
		o.Spec.Readers = internAll(o.Spec.Readers)
		o.Spec.Environments = internAll(o.Spec.Environments)
	case *wardenv1.Group:
		common(&o.TypeMeta, &o.ObjectMeta, &o.Status)
		o.Spec.Users = internAll(o.Spec.Users)
	case *wardenv1.Org:
		common(&o.TypeMeta, &o.ObjectMeta, &o.Status)
		o.Spec.Members = internAll(o.Spec.Members)
		if st := o.Spec.Storage; st != nil {
			st.Access = internAll(st.Access)
			internGrants(&st.RoleGrants)
		}
	case *wardenv1.Space:
		common(&o.TypeMeta, &o.ObjectMeta, &o.Status)
		o.Spec.Org, o.Spec.Bucket = internS(o.Spec.Org), internS(o.Spec.Bucket)
		o.Spec.Visibility = internS(o.Spec.Visibility)
		internGrants(&o.Spec.RoleGrants)
	case *wardenv1.StoragePolicy:
		common(&o.TypeMeta, &o.ObjectMeta, &o.Status)
		o.Spec.Admins = internAll(o.Spec.Admins)
		o.Spec.AllPublic.Orgs = internAll(o.Spec.AllPublic.Orgs)
		o.Spec.AllPublic.Spaces = internAll(o.Spec.AllPublic.Spaces)
	}
	return in, nil
}

func common(t *metav1.TypeMeta, m *metav1.ObjectMeta, st *wardenv1.Status) {
	m.ManagedFields, m.Annotations, m.Labels = nil, nil, nil
	t.APIVersion, t.Kind = internS(t.APIVersion), internS(t.Kind)
	m.Namespace = internS(m.Namespace)
	for i := range st.Conditions {
		c := &st.Conditions[i]
		c.Type, c.Reason, c.Message = internS(c.Type), internS(c.Reason), internS(c.Message)
		c.Status = internS(c.Status)
	}
}

func internGrants(g *wardenv1.RoleGrants) {
	g.Users = internAll(g.Users)
	g.Suppliers = internAll(g.Suppliers)
	g.Trustees = internAll(g.Trustees)
}

// internS is the one stored copy of s (unique holds it for as long as an object refers to it).
func internS[S ~string](s S) S {
	if s == "" {
		return s
	}
	return S(unique.Make(string(s)).Value())
}

// internAll interns ss's strings, in a slice of exactly their number: decoding grows a list by
// doubling, which leaves a third of a 20-reader list's array unused.
func internAll[S ~string](ss []S) []S {
	if cap(ss) > len(ss) {
		ss = append(make([]S, 0, len(ss)), ss...)
	}
	for i := range ss {
		ss[i] = internS(ss[i])
	}
	return ss
}

package clusterpolicy

import (
	"sync"

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

// interned is the table of stored strings. Not package unique: its table holds a value only as
// long as a unique.Handle to it lives, and objects keep strings, not handles, so after every
// garbage collection the next object got a copy of its own again (a clone of each reader per GC
// cycle of the initial sync, ~6 MB of copies at 50,000 Datasets). The table is dropped whole
// when it outgrows maxInterned (strings of objects long gone), which costs only sharing.
var interned = struct {
	sync.RWMutex
	m map[string]string
}{m: map[string]string{}}

const maxInterned = 1 << 18

// internS is the one stored copy of s.
func internS[S ~string](s S) S {
	if s == "" {
		return s
	}
	interned.RLock()
	v, ok := interned.m[string(s)]
	interned.RUnlock()
	if ok {
		return S(v)
	}
	interned.Lock()
	defer interned.Unlock()
	if v, ok := interned.m[string(s)]; ok {
		return S(v)
	}
	if len(interned.m) >= maxInterned {
		interned.m = map[string]string{}
	}
	interned.m[string(s)] = string(s)
	return s
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

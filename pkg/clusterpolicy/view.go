package clusterpolicy

import (
	"context"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wardenv1 "github.com/warden-dev/warden/pkg/apis/warden/v1alpha1"
	"github.com/warden-dev/warden/pkg/contract"
	"github.com/warden-dev/warden/pkg/policy"
)

// Source is the policy in force: the file (when there is one) and the objects in the cache.
type Source struct {
	parsed parseCache
	spaces spaceCache
	idx    idxPointer
	// readers and readersSynced: the reader index Attach keeps (readers.go).
	readers       readerIndex
	readersSynced func() bool
	// Reader is the manager's cache, with the indexes of Register.
	Reader client.Reader
	// File is the policy file's current policy (nil: no file, or none loaded).
	File func() *policy.Policy
	// Project is the GCP project when the file names none.
	Project string
	// Synced reports whether the cache has synced; until then there is no policy (fail closed).
	Synced func() bool
}

// View is the policy in force now, nil until the cache has synced.
func (s *Source) View() policy.View {
	if s.Synced != nil && !s.Synced() {
		return nil
	}
	var file *policy.Policy
	if s.File != nil {
		file = s.File()
	}
	return &view{s: s, file: file}
}

// view answers from one snapshot of the file and the live cache, for one decision or listing
// (one goroutine): it remembers what it resolved, so a listing resolves each dataset, root and
// principal's groups once. Lookups never fail: a cache read that errs answers "no such thing",
// which never grants.
type view struct {
	s    *Source
	file *policy.Policy

	datasets   map[string]resolved
	owners     map[string]ownerResult
	groups     map[string][]string
	namespaces map[string]nsRules
}

type ownerResult struct {
	o  policy.Owner
	ok bool
}

type resolved struct {
	d  policy.Dataset
	ok bool
}

// nsRules are what a cluster admin decided for a namespace's Datasets (namespaceRules), or why
// they cannot be read.
type nsRules struct {
	root string
	ids  idClaims
	err  error
}

var _ policy.View = (*view)(nil)

func ctx() context.Context { return context.Background() }

func (v *view) Owner(sa string) (policy.Owner, bool) {
	if r, ok := v.owners[sa]; ok {
		return r.o, r.ok
	}
	o, ok := v.lookupOwner(sa)
	if v.owners == nil {
		v.owners = map[string]ownerResult{}
	}
	v.owners[sa] = ownerResult{o, ok}
	return o, ok
}

func (v *view) lookupOwner(sa string) (policy.Owner, bool) {
	if v.file != nil {
		if o, ok := v.file.Owner(sa); ok {
			return o, true
		}
	}
	o := v.s.owner(strings.Replace(sa, "/", ".", 1))
	if o == nil {
		return policy.Owner{}, false
	}
	out, err := ownerOf(o)
	if err != nil || out.ServiceAccount != sa {
		return policy.Owner{}, false
	}
	return out, true
}

func (v *view) fileDefines(id string) bool {
	if v.file == nil {
		return false
	}
	_, ok := v.file.Dataset(id)
	return ok
}

func (v *view) Dataset(id string) (policy.Dataset, bool) {
	if v.file != nil {
		if d, ok := v.file.Dataset(id); ok {
			return d, true
		}
	}
	return v.objectDataset(id)
}

// objectDataset resolves an id to the Dataset object in force: the oldest valid one of that
// name, its snapshot directories under its namespace's root.
func (v *view) objectDataset(id string) (policy.Dataset, bool) {
	if r, ok := v.datasets[id]; ok {
		return r.d, r.ok
	}
	d, ok := v.lookupDataset(id)
	if v.datasets == nil {
		v.datasets = map[string]resolved{}
	}
	v.datasets[id] = resolved{d, ok}
	return d, ok
}

func (v *view) lookupDataset(id string) (policy.Dataset, bool) {
	_, d, ok := v.datasetHolder(id)
	return d, ok
}

// datasetHolder is the Dataset that holds an id: the oldest (then first by namespace) of those
// that are acceptable on their own, valid and under their namespace's snapshot root. An object
// that could never be accepted (a namespace without a root, say) never holds an id, so it
// cannot shadow the one that is.
func (v *view) datasetHolder(id string) (*wardenv1.Dataset, policy.Dataset, bool) {
	var best *wardenv1.Dataset
	var bestD policy.Dataset
	for _, o := range v.s.datasetsNamed(id) {
		if !o.DeletionTimestamp.IsZero() || (best != nil && !older(o.ObjectMeta, best.ObjectMeta)) {
			continue
		}
		if d, err := v.resolve(o); err == nil {
			best, bestD = o, d
		}
	}
	return best, bestD, best != nil
}

func older(a, b metav1.ObjectMeta) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.Namespace < b.Namespace
}

// resolve checks a Dataset and puts it under its namespace's snapshot root.
func (v *view) resolve(d *wardenv1.Dataset) (policy.Dataset, error) {
	if _, err := v.s.parsed.dataset(d); err != nil {
		return policy.Dataset{}, err
	}
	r, ok := v.namespaces[d.Namespace]
	if !ok {
		r = v.s.namespaceRules(d.Namespace)
		if v.namespaces == nil {
			v.namespaces = map[string]nsRules{}
		}
		v.namespaces[d.Namespace] = r
	}
	if r.err != nil {
		return policy.Dataset{}, r.err
	}
	if err := r.ids.check(d.Namespace, d.Name); err != nil {
		return policy.Dataset{}, err
	}
	return v.s.parsed.underRoot(d, r.root)
}

func (v *view) CanRead(id string, who policy.Principal) bool {
	d, ok := v.Dataset(id)
	return ok && v.matchesAny(d.Members(), who)
}

func (v *view) OwnerCanRead(id, owner string) bool {
	o, ok := v.Owner(owner)
	d, dok := v.Dataset(id)
	if !ok || !dok {
		return false
	}
	if !d.AllowsEnvironment(o.Environment) {
		return false
	}
	return v.matchesAny(d.Members(), policy.Principal{ServiceAccount: owner})
}

// matchesAny is the file's rule with both sources' groups: a user is in group G when the caller
// says so (an identity provider vouched for it) or when G, from the file or an object, lists it.
func (v *view) matchesAny(members []policy.Member, who policy.Principal) bool {
	var groups []string
	for _, m := range members {
		switch m.Kind {
		case policy.KindServiceAccount:
			if who.ServiceAccount != "" && m.Name == who.ServiceAccount {
				return true
			}
		case policy.KindUser:
			if who.User != "" && m.Name == who.User {
				return true
			}
		case policy.KindGroup:
			if who.ServiceAccount != "" {
				continue
			}
			if groups == nil {
				groups = v.groupsOf(who)
			}
			if slices.Contains(groups, m.Name) {
				return true
			}
		}
	}
	return false
}

// groupsOf lists the groups a user principal is in: vouched, the file's, the objects'.
func (v *view) groupsOf(who policy.Principal) []string {
	if who.User == "" {
		return slices.Clone(who.Groups)
	}
	if g, ok := v.groups[who.User]; ok {
		return append(slices.Clone(who.Groups), g...)
	}
	g := v.userGroups(who.User)
	if v.groups == nil {
		v.groups = map[string][]string{}
	}
	v.groups[who.User] = g
	return append(slices.Clone(who.Groups), g...)
}

// userGroups lists the groups of the file and the objects that name user.
func (v *view) userGroups(user string) []string {
	var out []string
	who := policy.Principal{User: user}
	if v.file != nil {
		for name, users := range v.file.Groups {
			if slices.Contains(users, who.User) {
				out = append(out, name)
			}
		}
	}
	for _, g := range v.s.groupsBy(indexUser, who.User) {
		if _, fileHas := v.fileGroup(g.Name); fileHas {
			continue // the file's group of that name is the one in force
		}
		out = append(out, g.Name)
	}
	return out
}

func (v *view) fileGroup(name string) ([]string, bool) {
	if v.file == nil {
		return nil, false
	}
	users, ok := v.file.Groups[name]
	return users, ok
}

func (v *view) ReadableBy(who policy.Principal) []string {
	keys := []string{}
	if who.ServiceAccount != "" {
		keys = append(keys, string(policy.KindServiceAccount)+":"+who.ServiceAccount)
	} else {
		who.Groups = v.groupsOf(who)
		keys = append(keys, string(policy.KindUser)+":"+who.User)
		for _, g := range who.Groups {
			keys = append(keys, string(policy.KindGroup)+":"+g)
		}
	}
	var out []string
	if v.file != nil {
		out = v.file.ReadableBy(who)
	}
	var objs []string
	seen := map[string]bool{}
	for _, k := range keys {
		for _, ds := range v.s.datasetsBy(indexReader, k) {
			id := ds.Name
			if seen[id] || v.fileDefines(id) {
				continue
			}
			seen[id] = true
			// The object that lists the reader must be the one in force for its id.
			if d, ok := v.objectDataset(id); ok && v.matchesAny(d.Members(), who) {
				objs = append(objs, id)
			}
		}
	}
	slices.Sort(objs)
	return append(out, objs...)
}

func (v *view) DatasetIDs() []string {
	var out []string
	if v.file != nil {
		out = v.file.DatasetIDs()
	}
	var objs []string
	seen := map[string]bool{}
	for _, ds := range v.s.allDatasets() {
		id := ds.Name
		if seen[id] || v.fileDefines(id) {
			continue
		}
		seen[id] = true
		if _, ok := v.objectDataset(id); ok {
			objs = append(objs, id)
		}
	}
	slices.Sort(objs)
	return append(out, objs...)
}

func (v *view) IsOrgMember(org string, who policy.Principal) (policy.Org, bool) {
	if v.file != nil {
		for _, o := range v.file.Orgs {
			if o.Name == org {
				return v.file.IsOrgMember(org, who)
			}
		}
	}
	o := v.s.org(org)
	if o == nil {
		return policy.Org{}, false
	}
	out, members, err := orgOf(o)
	if err != nil {
		return policy.Org{}, false
	}
	return out, v.matchesAny(members, who)
}

func (v *view) OrgsOf(who policy.Principal) []policy.Org {
	var out []policy.Org
	fileOrgs := map[string]bool{}
	if v.file != nil {
		out = v.file.OrgsOf(who)
		for _, o := range v.file.Orgs {
			fileOrgs[o.Name] = true
		}
	}
	// The member index is keyed by the members as written: the principal's own entry, and for a
	// person each group it is in.
	keys := []string{string(policy.KindServiceAccount) + ":" + who.ServiceAccount}
	if who.ServiceAccount == "" {
		keys = []string{string(policy.KindUser) + ":" + who.User}
		for _, g := range v.groupsOf(who) {
			keys = append(keys, string(policy.KindGroup)+":"+g)
		}
	}
	seen := map[string]bool{}
	var objs []policy.Org
	for _, key := range keys {
		for _, org := range v.s.orgsBy(indexMember, key) {
			if fileOrgs[org.Name] || seen[org.Name] {
				continue
			}
			seen[org.Name] = true
			if o, _, err := orgOf(org); err == nil {
				objs = append(objs, o)
			}
		}
	}
	slices.SortFunc(objs, func(a, b policy.Org) int { return strings.Compare(a.Name, b.Name) })
	return append(out, objs...)
}

func (v *view) Project() string {
	if v.file != nil && v.file.GCP.Project != "" {
		return v.file.GCP.Project
	}
	return v.s.Project
}

// namespaceRules reads what a cluster admin decided for a namespace's Datasets: where they
// live (warden.dev/snapshot-root) and which ids they may take (warden.dev/dataset-ids).
func (s *Source) namespaceRules(namespace string) nsRules {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(namespaceGVK)
	if err := s.Reader.Get(ctx(), client.ObjectKey{Name: namespace}, m); err != nil {
		return nsRules{err: err}
	}
	root, ok := m.Annotations[contract.AnnotationSnapshotRoot]
	if !ok || root == "" {
		return nsRules{err: errNoRoot}
	}
	r := nsRules{root: strings.TrimSuffix(root, "/")}
	if ids, ok := m.Annotations[contract.AnnotationDatasetIDs]; ok {
		r.ids, r.err = parseIDClaims(ids)
	}
	return r
}

// Now is the clock status conditions use.
var Now = func() metav1.Time { return metav1.NewTime(time.Now()) }

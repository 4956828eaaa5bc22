package policy

import (
	"slices"
)

// View is the policy in force, whatever it comes from: the file (*Policy), the cluster's
// objects, or both (pkg/clusterpolicy). Everything that decides uses a View, so the rules are
// the same whichever source an installation uses.
type View interface {
	// Owner returns the owner entry for a service account "namespace/name".
	Owner(serviceAccount string) (Owner, bool)
	// Dataset returns a dataset by id.
	Dataset(id string) (Dataset, bool)
	// CanRead reports whether who is a reader of dataset id.
	CanRead(id string, who Principal) bool
	// OwnerCanRead is CanRead for an owner, with the dataset's environment restriction applied.
	OwnerCanRead(id, owner string) bool
	// ReadableBy lists the datasets whose readers include who, environments aside, without
	// scanning every dataset.
	ReadableBy(who Principal) []string
	// DatasetIDs lists every dataset (for grant sources that must ask about each, RBAC).
	DatasetIDs() []string
	// IsOrgMember reports whether who is a member of org (directly, or for a person through a
	// group), returning the org.
	IsOrgMember(org string, who Principal) (Org, bool)
	// OrgsOf lists the orgs who belongs to.
	OrgsOf(who Principal) []Org
	// Project is the GCP project of the workload identity pool ("" when none is set).
	Project() string
	StorageView
}

var _ View = (*Policy)(nil)

// Project implements View.
func (p *Policy) Project() string { return p.GCP.Project }

// DatasetIDs implements View, in file order.
func (p *Policy) DatasetIDs() []string {
	out := make([]string, len(p.Datasets))
	for i, d := range p.Datasets {
		out[i] = d.ID
	}
	return out
}

// ReadableBy implements View from the reader index built at parse time, in file order.
func (p *Policy) ReadableBy(who Principal) []string {
	var idx []int
	add := func(m Member) { idx = append(idx, p.byReader[m]...) }
	if who.ServiceAccount != "" {
		add(Member{Kind: KindServiceAccount, Name: who.ServiceAccount})
	} else {
		add(Member{Kind: KindUser, Name: who.User})
		for _, g := range who.Groups {
			add(Member{Kind: KindGroup, Name: g})
		}
		for _, g := range p.memberOf[who.User] {
			add(Member{Kind: KindGroup, Name: g})
		}
	}
	slices.Sort(idx)
	idx = slices.Compact(idx)
	out := make([]string, len(idx))
	for i, n := range idx {
		out[i] = p.Datasets[n].ID
	}
	return out
}

// indexReaders maps every reader to the datasets that list it.
func (p *Policy) indexReaders() {
	p.byReader = map[Member][]int{}
	for i := range p.Datasets {
		for _, m := range p.Datasets[i].readers {
			p.byReader[m] = append(p.byReader[m], i)
		}
	}
}

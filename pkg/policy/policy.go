// Package policy is Warden's one policy file: which service accounts may run in opted-in
// namespaces (owners, each in one environment), which datasets exist and who may read them, and
// which GCP service account each org maps to. Parse is strict; Store keeps the last good policy
// while an edit is broken.
package policy

import (
	"fmt"
	"slices"
	"strings"
)

// Environment is one of dev, test, prod.
type Environment string

// Environments lists the valid environments in the order they are documented.
var Environments = []Environment{"dev", "test", "prod"}

// Valid reports whether e is a known environment.
func (e Environment) Valid() bool { return slices.Contains(Environments, e) }

// Check is Valid as an error that names the valid environments, so the policy file and the
// Owner and Dataset objects refuse an environment in the same words.
func (e Environment) Check() error {
	if e.Valid() {
		return nil
	}
	names := make([]string, len(Environments))
	for i, v := range Environments {
		names[i] = string(v)
	}
	return fmt.Errorf("environment %q is not one of %s", e, strings.Join(names, ", "))
}

// Policy is the parsed policy file. Build one with Parse or Load: they validate it and build the
// lookup indexes the query methods rely on.
type Policy struct {
	Owners   []Owner             `yaml:"owners"`
	Datasets []Dataset           `yaml:"datasets"`
	Groups   map[string][]string `yaml:"groups"`
	Orgs     []Org               `yaml:"orgs"`
	GCP      GCP                 `yaml:"gcp"`
	// Storage holds the cluster-wide storage roles; spaces live under their org.
	Storage StorageRoles `yaml:"storage"`

	owners   map[string]*Owner
	datasets map[string]*Dataset
	// memberOf maps a user to the groups that list it.
	memberOf map[string][]string
	// byReader maps a reader to the indexes of the datasets that list it.
	byReader map[Member][]int
}

// Owner is a Kubernetes service account allowed to run pods in opted-in namespaces.
type Owner struct {
	ServiceAccount string      `yaml:"serviceAccount"` // "namespace/name"
	Environment    Environment `yaml:"environment"`
	User           string      `yaml:"user"` // the person who answers for it (audit)
}

// Dataset is a readable dataset: its head snapshot directory and who may read it.
type Dataset struct {
	ID       string `yaml:"id"`
	Snapshot string `yaml:"snapshot"` // directory under the snapshot root
	// Snapshots names older snapshots that may also be staged from (name -> directory).
	Snapshots    map[string]string `yaml:"snapshots,omitempty"`
	Environments []Environment     `yaml:"environments,omitempty"`
	Readers      []string          `yaml:"readers"`
	// Namespace is where a Dataset object lives ("" for the file's datasets): with RBAC grants,
	// reads are granted there (pkg/broker).
	Namespace string `yaml:"-"`

	readers []Member
}

// Members are the dataset's readers, parsed.
func (d Dataset) Members() []Member { return d.readers }

// AllowsEnvironment reports whether owners of e may have the dataset at all, whoever its readers
// are: a dataset lists the environments it is restricted to, or none for all of them.
func (d Dataset) AllowsEnvironment(e Environment) bool {
	return len(d.Environments) == 0 || slices.Contains(d.Environments, e)
}

// WithMembers returns d with its readers parsed from Readers (for datasets built outside Parse,
// such as those read from the cluster); the first malformed reader is the error.
func (d Dataset) WithMembers() (Dataset, error) {
	d.readers = make([]Member, 0, len(d.Readers))
	for _, r := range d.Readers {
		m, err := ParseMember(r)
		if err != nil {
			return d, err
		}
		d.readers = append(d.readers, m)
	}
	return d, nil
}

// Org maps a group of owners to a GCP service account.
type Org struct {
	Name              string   `yaml:"name"`
	GCPServiceAccount string   `yaml:"gcpServiceAccount"`
	Members           []string `yaml:"members"`
	// Storage is the org's Cloud Storage spaces and roles (nil: none).
	Storage *OrgStorage `yaml:"storage,omitempty"`

	members []Member
}

// GCP holds project-wide GCP settings.
type GCP struct {
	Project string `yaml:"project"`
}

// MemberKind is the kind of a reader or org member.
type MemberKind string

const (
	KindUser           MemberKind = "user"
	KindGroup          MemberKind = "group"
	KindServiceAccount MemberKind = "serviceAccount"
)

// Member is a parsed "kind:name" entry of a reader or member list.
type Member struct {
	Kind MemberKind
	Name string
}

func (m Member) String() string { return string(m.Kind) + ":" + m.Name }

// ParseMember parses "user:NAME", "group:NAME" or "serviceAccount:NAMESPACE/NAME".
func ParseMember(s string) (Member, error) {
	kind, name, ok := strings.Cut(s, ":")
	if !ok || name == "" {
		return Member{}, fmt.Errorf("member %q must be user:NAME, group:NAME or serviceAccount:NAMESPACE/NAME", s)
	}
	m := Member{Kind: MemberKind(kind), Name: name}
	switch m.Kind {
	case KindUser, KindGroup:
		if err := ValidUser(name); err != nil {
			return Member{}, fmt.Errorf("member %q: %w", s, err)
		}
	case KindServiceAccount:
		if err := ValidServiceAccount(name); err != nil {
			return Member{}, fmt.Errorf("member %q: %w", s, err)
		}
	default:
		return Member{}, fmt.Errorf("member %q has unknown kind %q (want user, group or serviceAccount)", s, kind)
	}
	return m, nil
}

// Principal is who asks: a service account (an owner, "ns/name") or a user with the groups an
// external authority vouched for (the policy's own groups are added on top).
type Principal struct {
	ServiceAccount string
	User           string
	Groups         []string
}

// Subjects are whom a pod's request must be allowed for: its owner and, when the app acts for a
// person, that person too. Every decision (datasets, storage, orgs) needs all of them; a caller
// that is a service account is the owner acting for itself.
func Subjects(owner string, caller Principal) []Principal {
	out := []Principal{{ServiceAccount: owner}}
	if caller.ServiceAccount == "" && caller.User != "" {
		out = append(out, caller)
	}
	return out
}

// OrgsFor lists the orgs every subject is a member of (the pod's owner and its caller, or one
// person), in the view's order.
func OrgsFor(v View, subjects ...Principal) []Org {
	if len(subjects) == 0 {
		return nil
	}
	var out []Org
	for _, o := range v.OrgsOf(subjects[0]) {
		all := true
		for _, who := range subjects[1:] {
			_, member := v.IsOrgMember(o.Name, who)
			all = all && member
		}
		if all {
			out = append(out, o)
		}
	}
	return out
}

// String names the principal for errors and audit lines.
func (p Principal) String() string {
	if p.ServiceAccount != "" {
		return string(KindServiceAccount) + ":" + p.ServiceAccount
	}
	return string(KindUser) + ":" + p.User
}

// Owner returns the owner entry for a service account "namespace/name".
func (p *Policy) Owner(serviceAccount string) (Owner, bool) {
	o, ok := p.owners[serviceAccount]
	if !ok {
		return Owner{}, false
	}
	return *o, true
}

// Dataset returns a dataset by id.
func (p *Policy) Dataset(id string) (Dataset, bool) {
	d, ok := p.datasets[id]
	if !ok {
		return Dataset{}, false
	}
	return *d, true
}

// CanRead reports whether who may read dataset id. Unknown datasets are never readable.
func (p *Policy) CanRead(id string, who Principal) bool {
	d, ok := p.datasets[id]
	if !ok {
		return false
	}
	return p.matchesAny(d.readers, who)
}

// OwnerCanRead is CanRead for an owner, with the dataset's environment restriction applied:
// an owner of another environment never gets the dataset, whatever its reader list says.
func (p *Policy) OwnerCanRead(id, owner string) bool {
	o, ok := p.owners[owner]
	d, dok := p.datasets[id]
	if !ok || !dok {
		return false
	}
	if !d.AllowsEnvironment(o.Environment) {
		return false
	}
	return p.matchesAny(d.readers, Principal{ServiceAccount: owner})
}

// IsOrgMember reports whether who (an owner, or a person with the groups vouched for it) is a
// member of org, directly or through a group, returning the org.
func (p *Policy) IsOrgMember(org string, who Principal) (Org, bool) {
	for _, o := range p.Orgs {
		if o.Name == org {
			return o, p.matchesAny(o.members, who)
		}
	}
	return Org{}, false
}

// OrgsOf lists the orgs who belongs to, in file order.
func (p *Policy) OrgsOf(who Principal) []Org {
	var out []Org
	for _, o := range p.Orgs {
		if p.matchesAny(o.members, who) {
			out = append(out, o)
		}
	}
	return out
}

func (p *Policy) matchesAny(members []Member, who Principal) bool {
	for _, m := range members {
		switch m.Kind {
		case KindServiceAccount:
			if who.ServiceAccount != "" && m.Name == who.ServiceAccount {
				return true
			}
		case KindUser:
			if who.User != "" && m.Name == who.User {
				return true
			}
		case KindGroup:
			if who.ServiceAccount == "" && (slices.Contains(who.Groups, m.Name) || slices.Contains(p.memberOf[who.User], m.Name)) {
				return true
			}
		}
	}
	return false
}

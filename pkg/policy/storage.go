package policy

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
)

// Access is a kind of Cloud Storage access a pod asks for, the seed's SAS kinds: each adds to
// the one before.
type Access string

const (
	// AccessRead lists and reads objects.
	AccessRead Access = "read"
	// AccessUpload also creates objects, in the loading zone only: uploads reach main spaces
	// through it, after processing.
	AccessUpload Access = "upload"
	// AccessUploadMain also creates objects, straight into a main space (not the loading zone);
	// only for holders of the delete right there.
	AccessUploadMain Access = "upload/main"
	// AccessDelete also deletes (and so overwrites) objects.
	AccessDelete Access = "delete"
)

// Accesses lists the access kinds, weakest first.
var Accesses = []Access{AccessRead, AccessUpload, AccessUploadMain, AccessDelete}

// Valid reports whether a is a known access kind.
func (a Access) Valid() bool { return slices.Contains(Accesses, a) }

// UploadInto is the upload kind a space takes: upload in the loading zone, upload/main
// elsewhere (a signed PUT URL is an upload of that kind).
func UploadInto(s Space) Access {
	if s.LoadingZone {
		return AccessUpload
	}
	return AccessUploadMain
}

// Role is a storage role, ordered: a supplier can do what a user can, a trustee what a supplier
// can.
type Role int

const (
	RoleNone Role = iota
	// RoleUser lists and reads.
	RoleUser
	// RoleSupplier also uploads, and deletes in the loading zone.
	RoleSupplier
	// RoleTrustee also deletes anywhere.
	RoleTrustee
)

func (r Role) String() string {
	switch r {
	case RoleUser:
		return "user"
	case RoleSupplier:
		return "supplier"
	case RoleTrustee:
		return "trustee"
	}
	return "none"
}

// Visibility says who may read a space besides its role holders.
type Visibility string

const (
	// Public spaces can be read with a public role on one side (the org's or the space's), as
	// long as the other side is specific to the org or the space.
	VisibilityPublic Visibility = "public"
	// Internal spaces can be read by anyone with access to the org.
	VisibilityInternal Visibility = "internal"
	// Private spaces need a role on the space (or org-wide). The default.
	VisibilityPrivate Visibility = "private"
)

// Valid reports whether v is a known visibility ("" is private).
func (v Visibility) Valid() bool {
	return v == "" || v == VisibilityPublic || v == VisibilityInternal || v == VisibilityPrivate
}

// RoleGrants lists who holds each storage role, at org level (in every space of the org) or in
// one space.
type RoleGrants struct {
	Users     []string `yaml:"users,omitempty" json:"users,omitempty"`
	Suppliers []string `yaml:"suppliers,omitempty" json:"suppliers,omitempty"`
	Trustees  []string `yaml:"trustees,omitempty" json:"trustees,omitempty"`

	users, suppliers, trustees []Member
}

// Parsed returns the grants with their members parsed (for grants built outside Parse).
func (g RoleGrants) Parsed() (RoleGrants, error) {
	var err error
	if g.users, err = parseMemberList(g.Users); err != nil {
		return g, fmt.Errorf("users: %w", err)
	}
	if g.suppliers, err = parseMemberList(g.Suppliers); err != nil {
		return g, fmt.Errorf("suppliers: %w", err)
	}
	if g.trustees, err = parseMemberList(g.Trustees); err != nil {
		return g, fmt.Errorf("trustees: %w", err)
	}
	return g, nil
}

// Holders returns the parsed members of one role (exactly that role, not the ones above it).
func (g RoleGrants) Holders(r Role) []Member {
	switch r {
	case RoleUser:
		return g.users
	case RoleSupplier:
		return g.suppliers
	case RoleTrustee:
		return g.trustees
	}
	return nil
}

// OrgStorage is an org's Cloud Storage: who has access to the org, org-wide roles, its spaces
// and where commits of its loading zone are announced.
type OrgStorage struct {
	// Access lists who may reach the org's spaces at all (the seed's org_ORG_access); a role in
	// a space is needed on top, except to read internal spaces.
	Access []string `yaml:"access,omitempty"`
	// RoleGrants at org level hold in every space of the org and imply access to the org.
	RoleGrants `yaml:",inline"`
	// Topic is the Pub/Sub topic id (in gcp.project) commits of the loading zone are published to.
	Topic  string  `yaml:"topic,omitempty"`
	Spaces []Space `yaml:"spaces,omitempty"`

	access []Member
}

// AccessMembers are the parsed org access members.
func (o OrgStorage) AccessMembers() []Member { return o.access }

// WithMembers returns o with Access and its role grants parsed (for objects).
func (o OrgStorage) WithMembers() (OrgStorage, error) {
	var err error
	if o.access, err = parseMemberList(o.Access); err != nil {
		return o, fmt.Errorf("access: %w", err)
	}
	o.RoleGrants, err = o.RoleGrants.Parsed()
	return o, err
}

// Space is one bucket and object prefix of an org, with its visibility and role grants.
type Space struct {
	Name       string     `yaml:"name"`
	Bucket     string     `yaml:"bucket"`
	Prefix     string     `yaml:"prefix,omitempty"`
	Visibility Visibility `yaml:"visibility,omitempty"`
	// LoadingZone marks the org's one space where suppliers upload data for processing: they
	// may delete there too, and commits announce what they uploaded.
	LoadingZone bool `yaml:"loadingZone,omitempty"`
	RoleGrants  `yaml:",inline"`
}

// EffectiveVisibility is the space's visibility, private when unset.
func (s Space) EffectiveVisibility() Visibility {
	if s.Visibility == "" {
		return VisibilityPrivate
	}
	return s.Visibility
}

// StorageRoles are the cluster-wide storage roles.
type StorageRoles struct {
	// Admins bypass every role check (the seed's SDK_ADMIN); spaces must still exist.
	Admins    []string  `yaml:"admins,omitempty"`
	AllPublic AllPublic `yaml:"allPublic,omitempty"`

	admins []Member
}

// AllPublic lists who holds the seed's public roles, which reach public spaces only.
type AllPublic struct {
	// Orgs stands in for access to any org (org_all_public).
	Orgs []string `yaml:"orgs,omitempty"`
	// Spaces stands in for the user role in any space (spc_all_public).
	Spaces []string `yaml:"spaces,omitempty"`

	orgs, spaces []Member
}

// WithMembers returns r with its members parsed (for objects).
func (r StorageRoles) WithMembers() (StorageRoles, error) {
	var err error
	if r.admins, err = parseMemberList(r.Admins); err != nil {
		return r, fmt.Errorf("admins: %w", err)
	}
	if r.AllPublic.orgs, err = parseMemberList(r.AllPublic.Orgs); err != nil {
		return r, fmt.Errorf("allPublic.orgs: %w", err)
	}
	if r.AllPublic.spaces, err = parseMemberList(r.AllPublic.Spaces); err != nil {
		return r, fmt.Errorf("allPublic.spaces: %w", err)
	}
	return r, nil
}

// Merge adds other's members to r (storage roles from several sources are a union).
func (r StorageRoles) Merge(other StorageRoles) StorageRoles {
	r.Admins = append(append([]string(nil), r.Admins...), other.Admins...)
	r.admins = append(append([]Member(nil), r.admins...), other.admins...)
	r.AllPublic.Orgs = append(append([]string(nil), r.AllPublic.Orgs...), other.AllPublic.Orgs...)
	r.AllPublic.orgs = append(append([]Member(nil), r.AllPublic.orgs...), other.AllPublic.orgs...)
	r.AllPublic.Spaces = append(append([]string(nil), r.AllPublic.Spaces...), other.AllPublic.Spaces...)
	r.AllPublic.spaces = append(append([]Member(nil), r.AllPublic.spaces...), other.AllPublic.spaces...)
	return r
}

// StorageSpace is one space resolved with what a decision needs about its org.
type StorageSpace struct {
	Org   Org
	Store OrgStorage
	Space Space
}

func parseMemberList(in []string) ([]Member, error) {
	out := make([]Member, 0, len(in))
	for _, s := range in {
		m, err := ParseMember(s)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// ValidSpaceName checks a space name: at most 63 lower-case letters, digits and '-'.
func ValidSpaceName(s string) error {
	if !orgName.Match(s) {
		return fmt.Errorf("space name %q must be at most 63 lower-case letters, digits and '-'", s)
	}
	return nil
}

// ValidBucket checks a Cloud Storage bucket name (3-63 lower-case letters, digits, '-' and '_',
// starting and ending with a letter or digit; not "goog…").
func ValidBucket(s string) error {
	if !bucketName.Match(s) || strings.HasPrefix(s, "goog") {
		return fmt.Errorf("bucket %q must be 3-63 lower-case letters, digits, '-' and '_', starting and ending with a letter or digit", s)
	}
	return nil
}

// ValidPrefix checks a space's object prefix: empty (the whole bucket) or a clean relative path
// of letters, digits and . _ = - ending in '/', so that one space's prefix never matches
// another's objects by a shared beginning ("raw" would cover "raw-old/").
func ValidPrefix(s string) error {
	if s == "" {
		return nil
	}
	if !strings.HasSuffix(s, "/") || !prefixPart.Parts(s[:len(s)-1], '/') {
		return fmt.Errorf("prefix %q must be a relative path of letters, digits and . _ = - ending in '/'", s)
	}
	for _, p := range strings.Split(strings.TrimSuffix(s, "/"), "/") {
		if p == "." || p == ".." {
			return fmt.Errorf("prefix %q has a '.' or '..' part", s)
		}
	}
	return nil
}

// ValidTopic checks a Pub/Sub topic id.
func ValidTopic(s string) error {
	if !topicID.Match(s) || strings.HasPrefix(s, "goog") {
		return fmt.Errorf("topic %q must be a Pub/Sub topic id: 3-255 letters, digits and . _ ~ + %% -, starting with a letter", s)
	}
	return nil
}

// ValidObjectName checks an object path a pod names inside a space (relative to the space's
// prefix): a clean relative path without '.', '..' or empty parts, NUL bytes or control
// characters, at most 1024 bytes with the prefix (Cloud Storage's limit).
func ValidObjectName(prefix, name string) error {
	switch {
	case name == "":
		return errors.New("object name is empty")
	case len(prefix)+len(name) > 1024:
		return errors.New("object name is longer than 1024 bytes with the space's prefix")
	case strings.HasPrefix(name, "/") || strings.HasPrefix(name, `\`):
		return fmt.Errorf("object name %q must be relative to the space", name)
	case path.Clean(name) != name || name == "." || name == ".." || strings.HasPrefix(name, "../"):
		return fmt.Errorf("object name %q must be a clean path without '.', '..' or empty parts", name)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || r == '\\' {
			return fmt.Errorf("object name %q contains a control character or backslash", name)
		}
	}
	return nil
}

// ValidRootDir checks a commit's root directory inside the loading zone: like an object name,
// a trailing '/' allowed.
func ValidRootDir(prefix, dir string) error {
	return ValidObjectName(prefix, strings.TrimSuffix(dir, "/"))
}

// StorageSpace implements StorageView.
func (p *Policy) StorageSpace(org, space string) (StorageSpace, bool) {
	for _, o := range p.Orgs {
		if o.Name != org || o.Storage == nil {
			continue
		}
		for _, s := range o.Storage.Spaces {
			if s.Name == space {
				return StorageSpace{Org: o, Store: *o.Storage, Space: s}, true
			}
		}
	}
	return StorageSpace{}, false
}

// StorageSpaces implements StorageView, in file order.
func (p *Policy) StorageSpaces() []StorageSpace {
	var out []StorageSpace
	for _, o := range p.Orgs {
		if o.Storage == nil {
			continue
		}
		for _, s := range o.Storage.Spaces {
			out = append(out, StorageSpace{Org: o, Store: *o.Storage, Space: s})
		}
	}
	return out
}

// StorageRoles implements StorageView.
func (p *Policy) StorageRoles() StorageRoles { return p.Storage }

// Holds implements StorageView.
func (p *Policy) Holds(members []Member, who Principal) bool { return p.matchesAny(members, who) }

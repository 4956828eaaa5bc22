package policy

import (
	"fmt"
	"strings"
)

// StorageView is what a storage decision reads of the policy in force; View includes it.
type StorageView interface {
	// StorageSpace resolves a space of an org (false: no such org, or no such space in it).
	StorageSpace(org, space string) (StorageSpace, bool)
	// StorageSpaces lists every space in force.
	StorageSpaces() []StorageSpace
	// StorageRoles are the cluster-wide storage roles (admins, the public roles).
	StorageRoles() StorageRoles
	// Holds reports whether who is one of members, with the policy's groups resolved.
	Holds(members []Member, who Principal) bool
}

// StorageDecision is the answer for one principal. Missing names what it lacks when refused.
type StorageDecision struct {
	Allowed bool
	// Admin is set when the decision came from the admin bypass.
	Admin bool
	// Role is the principal's strongest role in the space (org-wide roles included).
	Role Role
	// Missing says what the principal lacks, in the policy's words, when refused.
	Missing string
	// Misplaced is set when the access kind does not fit the space (Missing says why), whoever
	// asks.
	Misplaced bool
}

// Needed is the role an access kind needs in a space: read needs user, upload supplier, delete
// trustee, except in the loading zone, where suppliers may delete what they uploaded;
// upload/main needs the delete right (the seed's "only viable with DELETE-Permission").
func Needed(a Access, s Space) Role {
	switch a {
	case AccessRead:
		return RoleUser
	case AccessUpload:
		return RoleSupplier
	case AccessUploadMain, AccessDelete:
		if s.LoadingZone {
			return RoleSupplier
		}
		return RoleTrustee
	}
	return RoleTrustee + 1 // an unknown kind is never granted
}

// misplaced says why an upload kind does not fit a space ("" when it does): the seed routes
// uploads through the loading zone, and upload/main is for main spaces. This is where data
// goes, not a right, so no role (not even an admin's) changes it.
func misplaced(a Access, sp StorageSpace) string {
	where := sp.Org.Name + "/" + sp.Space.Name
	switch {
	case a == AccessUpload && !sp.Space.LoadingZone:
		return fmt.Sprintf("uploads go through the loading zone: %s is a main space, which takes upload/main (needs role %s)", where, RoleTrustee)
	case a == AccessUploadMain && sp.Space.LoadingZone:
		return fmt.Sprintf("upload/main is for main spaces: %s is the loading zone, which takes upload", where)
	}
	return ""
}

// DecideStorage applies the storage rules (after the SAS access manager's) to one principal.
// Two gates, both needed:
//
//   - the org: access to the org (its access list, or any org-wide role);
//   - the space: a role in the space (or org-wide) at least Needed(a).
//
// Reading relaxes them by visibility: an internal space needs the org gate only; a public space
// takes the public org role in place of org access, or the public space role in place of a
// space role, but not both (someone with no tie to the org or the space is never enough).
// Uploading and deleting never take public roles. Admins pass every gate, but an upload kind
// must fit the space whoever asks (upload into the loading zone, upload/main elsewhere).
func DecideStorage(v StorageView, sp StorageSpace, who Principal, a Access) StorageDecision {
	if !a.Valid() {
		return StorageDecision{Missing: fmt.Sprintf("needs a known access kind (read, upload, upload/main or delete), not %q", a)}
	}
	if m := misplaced(a, sp); m != "" {
		return StorageDecision{Missing: m, Misplaced: true}
	}
	roles := v.StorageRoles()
	if v.Holds(roles.admins, who) {
		return StorageDecision{Allowed: true, Admin: true, Role: RoleTrustee}
	}
	orgRole := strongest(v, sp.Store.RoleGrants, who)
	role := max(orgRole, strongest(v, sp.Space.RoleGrants, who))
	orgAccess := orgRole > RoleNone || v.Holds(sp.Store.access, who)
	need := Needed(a, sp.Space)
	d := StorageDecision{Role: role}

	if a == AccessRead {
		switch sp.Space.EffectiveVisibility() {
		case VisibilityInternal:
			d.Allowed = orgAccess
		case VisibilityPublic:
			orgGate := orgAccess || v.Holds(roles.AllPublic.orgs, who)
			spaceGate := role >= need || v.Holds(roles.AllPublic.spaces, who)
			d.Allowed = orgGate && spaceGate && (orgAccess || role >= need)
		default:
			d.Allowed = orgAccess && role >= need
		}
	} else {
		d.Allowed = orgAccess && role >= need
	}
	if !d.Allowed {
		d.Missing = missing(sp, a, need, orgAccess, role)
	}
	return d
}

// strongest is who's strongest role among grants.
func strongest(v StorageView, g RoleGrants, who Principal) Role {
	for _, r := range []Role{RoleTrustee, RoleSupplier, RoleUser} {
		if v.Holds(g.Holders(r), who) {
			return r
		}
	}
	return RoleNone
}

func missing(sp StorageSpace, a Access, need Role, orgAccess bool, have Role) string {
	where := sp.Org.Name + "/" + sp.Space.Name
	var parts []string
	if !orgAccess {
		parts = append(parts, fmt.Sprintf("access to org %s", sp.Org.Name))
	}
	switch {
	case a == AccessRead && sp.Space.EffectiveVisibility() == VisibilityInternal:
	case have < need:
		parts = append(parts, fmt.Sprintf("role %s in space %s (has %s)", need, where, have))
	}
	return "needs " + strings.Join(parts, " and ")
}

// DecideStorageFor is DecideStorage for every subject (Subjects: a pod's owner and its caller,
// or one person), the rule every pod request is decided by: the access is allowed only when it
// is for each of them. It returns each subject's decision, in order, and the index of the first
// subject refused, or -1 when none is.
func DecideStorageFor(v StorageView, sp StorageSpace, subjects []Principal, a Access) ([]StorageDecision, int) {
	ds := make([]StorageDecision, len(subjects))
	refused := -1
	for i, who := range subjects {
		ds[i] = DecideStorage(v, sp, who, a)
		if !ds[i].Allowed && refused < 0 {
			refused = i
		}
	}
	return ds, refused
}

// SpaceAccess is what subjects may all do in one space: the access kinds and the weakest of
// their roles (the one that limits them).
type SpaceAccess struct {
	Org, Space string
	Role       Role
	Access     []Access
}

// SpacesFor lists the spaces where every subject (a pod's owner and its caller, or one person)
// has some access, with the access kinds all of them pass: DecideStorage for each kind.
func SpacesFor(v StorageView, subjects ...Principal) []SpaceAccess {
	var out []SpaceAccess
	for _, sp := range v.StorageSpaces() {
		sa := SpaceAccess{Org: sp.Org.Name, Space: sp.Space.Name, Role: RoleTrustee}
		for _, a := range Accesses {
			ds, refused := DecideStorageFor(v, sp, subjects, a)
			for _, d := range ds {
				if d.Allowed {
					sa.Role = min(sa.Role, d.Role)
				}
			}
			if refused < 0 {
				sa.Access = append(sa.Access, a)
			}
		}
		if len(sa.Access) > 0 {
			out = append(out, sa)
		}
	}
	return out
}

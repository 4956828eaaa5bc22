package policy

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The seed's role names, as a principal holds them: one org-side and one space-side role.
var (
	orgRoles   = []string{"none", "org_orga1_access", "org_all_public"}
	spaceRoles = []string{"none", "spc_space1_user", "spc_space1_supplier", "spc_space1_trustee", "spc_all_public"}
)

// seedPolicy gives user "ORGROLE+SPACEROLE" exactly those two roles, in every space of orga1.
func seedPolicy(t *testing.T) *Policy {
	t.Helper()
	var access, pubOrgs, pubSpaces []string
	grants := map[string][]string{}
	for _, o := range orgRoles {
		for _, s := range spaceRoles {
			u := "user:" + o + "+" + s
			switch o {
			case "org_orga1_access":
				access = append(access, u)
			case "org_all_public":
				pubOrgs = append(pubOrgs, u)
			}
			switch s {
			case "spc_all_public":
				pubSpaces = append(pubSpaces, u)
			case "none":
			default:
				role := strings.TrimPrefix(s, "spc_space1_") + "s"
				grants[role] = append(grants[role], u)
			}
		}
	}
	list := func(l []string) string { return "[" + strings.Join(l, ", ") + "]" }
	space := func(name, vis string, zone bool) string {
		return fmt.Sprintf(`
      - name: %s
        bucket: orga1-data
        prefix: %s/
        visibility: %s
        loadingZone: %t
        users: %s
        suppliers: %s
        trustees: %s`, name, name, vis, zone, list(grants["users"]), list(grants["suppliers"]), list(grants["trustees"]))
	}
	doc := fmt.Sprintf(`
storage:
  admins: [group:sdk-admins]
  allPublic:
    orgs: %s
    spaces: %s
groups:
  sdk-admins: [root]
orgs:
  - name: orga1
    gcpServiceAccount: orga1@proj-1234.iam.gserviceaccount.com
    storage:
      access: %s
      topic: orga1-commits
      spaces:%s%s%s%s
gcp:
  project: proj-1234
`, list(pubOrgs), list(pubSpaces), list(access),
		space("public", "public", false), space("internal", "internal", false),
		space("private", "private", false), space("loadingzone", "private", true))
	p, err := Parse([]byte(doc))
	require.NoError(t, err)
	return p
}

// TestStorageSeedExamples is the seed's Security-Examples as a table over every combination of
// one org-side and one space-side role: the listed combinations pass, every other is refused.
func TestStorageSeedExamples(t *testing.T) {
	p := seedPolicy(t)
	combos := func(pairs ...string) map[string]bool {
		m := map[string]bool{}
		for _, s := range pairs {
			m[s] = true
		}
		return m
	}
	withAccess := func(spaceRoles ...string) []string {
		var out []string
		for _, s := range spaceRoles {
			out = append(out, "org_orga1_access+"+s)
		}
		return out
	}
	cases := []struct {
		space  string
		access Access
		allow  map[string]bool
	}{
		// "read data from a PUBLIC space1": the nine listed combinations (three distinct with
		// spc_all_public); org_all_public with spc_all_public is not among them.
		{"public", AccessRead, combos(append(withAccess("spc_space1_user", "spc_space1_supplier", "spc_space1_trustee", "spc_all_public"),
			"org_all_public+spc_space1_user", "org_all_public+spc_space1_supplier", "org_all_public+spc_space1_trustee")...)},
		// "upload or delete from PUBLIC space1: *_all_public will not be enough". Uploads go
		// through the loading zone: into a main space only upload/main, "only viable with
		// DELETE-Permission", so the trustee's; plain upload there is nobody's.
		{"public", AccessUpload, nil},
		{"public", AccessUploadMain, combos(withAccess("spc_space1_trustee")...)},
		{"public", AccessDelete, combos(withAccess("spc_space1_trustee")...)},
		// "store data into a PRIVATE/INTERNAL space1": org access plus supplier or trustee, as
		// upload to the loading zone (below); straight into the space, upload/main, trustee.
		{"private", AccessUpload, nil},
		{"internal", AccessUpload, nil},
		{"private", AccessUploadMain, combos(withAccess("spc_space1_trustee")...)},
		{"internal", AccessUploadMain, combos(withAccess("spc_space1_trustee")...)},
		{"private", AccessDelete, combos(withAccess("spc_space1_trustee")...)},
		{"internal", AccessDelete, combos(withAccess("spc_space1_trustee")...)},
		// Reading a private space needs org access and a space role; an internal one org access.
		{"private", AccessRead, combos(withAccess("spc_space1_user", "spc_space1_supplier", "spc_space1_trustee")...)},
		{"internal", AccessRead, combos(withAccess("none", "spc_space1_user", "spc_space1_supplier", "spc_space1_trustee", "spc_all_public")...)},
		// "the loading zone ... deletion is even possible for suppliers".
		{"loadingzone", AccessDelete, combos(withAccess("spc_space1_supplier", "spc_space1_trustee")...)},
		{"loadingzone", AccessUpload, combos(withAccess("spc_space1_supplier", "spc_space1_trustee")...)},
		{"loadingzone", AccessUploadMain, nil},
		{"loadingzone", AccessRead, combos(withAccess("spc_space1_user", "spc_space1_supplier", "spc_space1_trustee")...)},
	}
	for _, c := range cases {
		sp, ok := p.StorageSpace("orga1", c.space)
		require.True(t, ok)
		for _, o := range orgRoles {
			for _, s := range spaceRoles {
				who := o + "+" + s
				t.Run(fmt.Sprintf("%s/%s/%s", c.space, c.access, who), func(t *testing.T) {
					d := DecideStorage(p, sp, Principal{User: who}, c.access)
					assert.Equal(t, c.allow[who], d.Allowed, "missing: %s", d.Missing)
					misplaced := (c.access == AccessUpload) != (c.space == "loadingzone") && (c.access == AccessUpload || c.access == AccessUploadMain)
					assert.Equal(t, misplaced, d.Misplaced)
					if !d.Allowed && !misplaced {
						assert.True(t, strings.HasPrefix(d.Missing, "needs "), d.Missing)
					}
				})
			}
		}
	}
}

func TestStorageAdminBypasses(t *testing.T) {
	p := seedPolicy(t)
	for _, space := range []string{"public", "internal", "private", "loadingzone"} {
		sp, _ := p.StorageSpace("orga1", space)
		for _, a := range Accesses {
			d := DecideStorage(p, sp, Principal{User: "root"}, a)
			if a == UploadInto(sp.Space) || a == AccessRead || a == AccessDelete {
				assert.True(t, d.Allowed && d.Admin, "%s %s", space, a)
			} else {
				assert.True(t, !d.Allowed && d.Misplaced, "where data goes is not a right an admin bypasses: %s %s", space, a)
				continue
			}
			// The group may also be vouched for by the caller's identity provider.
			d = DecideStorage(p, sp, Principal{User: "someone", Groups: []string{"sdk-admins"}}, a)
			assert.True(t, d.Allowed, "%s %s", space, a)
		}
	}
	_, ok := p.StorageSpace("orga1", "nope")
	assert.False(t, ok, "admins pass role checks, not existence")
}

func TestStorageOrgWideRolesAndMissing(t *testing.T) {
	p, err := Parse([]byte(`
owners:
  - {serviceAccount: team-a/etl, environment: prod}
groups:
  loaders: [alice]
orgs:
  - name: acme
    gcpServiceAccount: acme@proj-1234.iam.gserviceaccount.com
    storage:
      suppliers: [group:loaders, serviceAccount:team-a/etl]
      access: [user:carol]
      topic: acme-commits
      spaces:
        - {name: raw, bucket: acme-raw, prefix: raw/, loadingZone: true}
        - {name: curated, bucket: acme-raw, prefix: curated/, trustees: [user:bob]}
gcp: {project: proj-1234}
`))
	require.NoError(t, err)
	raw, _ := p.StorageSpace("acme", "raw")
	curated, _ := p.StorageSpace("acme", "curated")
	etl := Principal{ServiceAccount: "team-a/etl"}
	alice := Principal{User: "alice"}

	// An org-wide supplier is a supplier in every space, and has access to the org.
	for _, who := range []Principal{etl, alice} {
		assert.True(t, DecideStorage(p, raw, who, AccessUpload).Allowed, who)
		assert.True(t, DecideStorage(p, curated, who, AccessRead).Allowed, who)
		d := DecideStorage(p, curated, who, AccessDelete)
		assert.False(t, d.Allowed, who)
		assert.Equal(t, "needs role trustee in space acme/curated (has supplier)", d.Missing)
	}
	// A space role without access to the org is half of what is needed.
	d := DecideStorage(p, curated, Principal{User: "bob"}, AccessRead)
	assert.False(t, d.Allowed)
	assert.Equal(t, "needs access to org acme", d.Missing)
	// Org access without a role in a private space is the other half.
	d = DecideStorage(p, raw, Principal{User: "carol"}, AccessRead)
	assert.Equal(t, "needs role user in space acme/raw (has none)", d.Missing)
	d = DecideStorage(p, raw, Principal{User: "mallory"}, AccessUpload)
	assert.Equal(t, "needs access to org acme and role supplier in space acme/raw (has none)", d.Missing)
	// A group is never a service account's: an owner is matched by name only.
	assert.False(t, DecideStorage(p, raw, Principal{ServiceAccount: "team-a/other", Groups: []string{"loaders"}}, AccessRead).Allowed)
}

func TestStorageUnknownAccessNeverGranted(t *testing.T) {
	p := seedPolicy(t)
	sp, _ := p.StorageSpace("orga1", "private")
	d := DecideStorage(p, sp, Principal{User: "org_orga1_access+spc_space1_trustee"}, Access("admin"))
	assert.False(t, d.Allowed)
	d = DecideStorage(p, sp, Principal{User: "root"}, Access("admin"))
	assert.False(t, d.Allowed, "not even for an admin")
}

// SpacesFor lists, for every subject at once, the kinds DecideStorage allows, with the weakest
// role: what "what may I do" answers.
func TestSpacesFor(t *testing.T) {
	p, err := Parse([]byte(`
owners:
  - {serviceAccount: team-a/etl, environment: prod}
orgs:
  - name: acme
    gcpServiceAccount: acme@proj-1234.iam.gserviceaccount.com
    members: [serviceAccount:team-a/etl, group:analysts]
    storage:
      access: [serviceAccount:team-a/etl, user:ann, user:bob]
      topic: acme-commits
      spaces:
        - {name: lz, bucket: acme-raw, prefix: lz/, loadingZone: true, suppliers: [serviceAccount:team-a/etl, user:ann]}
        - {name: curated, bucket: acme-raw, prefix: curated/, trustees: [serviceAccount:team-a/etl], users: [user:ann]}
        - {name: closed, bucket: acme-raw, prefix: closed/, trustees: [user:bob]}
groups:
  analysts: [ann]
gcp: {project: proj-1234}
`))
	require.NoError(t, err)
	etl, ann, bob := Principal{ServiceAccount: "team-a/etl"}, Principal{User: "ann"}, Principal{User: "bob"}
	assert.Equal(t, []SpaceAccess{
		{Org: "acme", Space: "lz", Role: RoleSupplier, Access: []Access{AccessRead, AccessUpload, AccessDelete}},
		{Org: "acme", Space: "curated", Role: RoleTrustee, Access: []Access{AccessRead, AccessUploadMain, AccessDelete}},
	}, SpacesFor(p, etl))
	assert.Equal(t, []SpaceAccess{
		{Org: "acme", Space: "lz", Role: RoleSupplier, Access: []Access{AccessRead, AccessUpload, AccessDelete}},
		{Org: "acme", Space: "curated", Role: RoleUser, Access: []Access{AccessRead}},
	}, SpacesFor(p, etl, ann), "together: what both pass, the weaker role")
	assert.Empty(t, SpacesFor(p, etl, bob), "bob's space is not the owner's, and the owner's are not bob's")
	assert.Equal(t, []string{"acme"}, orgNames(OrgsFor(p, etl, ann)), "ann through the analysts group")
	assert.Empty(t, OrgsFor(p, etl, bob))
}

func orgNames(orgs []Org) []string {
	var out []string
	for _, o := range orgs {
		out = append(out, o.Name)
	}
	return out
}

// DecideStorageFor is the owner-and-caller rule: allowed only when every subject is, and the
// first refused subject is the one a refusal names.
func TestDecideStorageFor(t *testing.T) {
	p, err := Parse([]byte(`
owners:
  - {serviceAccount: team-a/etl, environment: prod}
  - {serviceAccount: team-a/other, environment: prod}
orgs:
  - name: acme
    gcpServiceAccount: acme@proj-1234.iam.gserviceaccount.com
    storage:
      access: [serviceAccount:team-a/etl, user:ann, user:bob]
      topic: acme-commits
      spaces:
        - {name: lz, bucket: acme-raw, prefix: lz/, loadingZone: true, suppliers: [serviceAccount:team-a/etl, user:ann]}
gcp: {project: proj-1234}
`))
	require.NoError(t, err)
	lz, _ := p.StorageSpace("acme", "lz")
	for _, tc := range []struct {
		name    string
		owner   string
		caller  Principal
		access  Access
		refused int
		missing string // the refused subject's
	}{
		{"owner for itself", "team-a/etl", Principal{ServiceAccount: "team-a/etl"}, AccessUpload, -1, ""},
		{"owner and caller both suppliers", "team-a/etl", Principal{User: "ann"}, AccessUpload, -1, ""},
		{"caller lacks the role", "team-a/etl", Principal{User: "bob"}, AccessUpload, 1, "needs role supplier in space acme/lz (has none)"},
		{"owner lacks the role, caller has it", "team-a/other", Principal{User: "ann"}, AccessUpload, 0, "needs access to org acme and role supplier in space acme/lz (has none)"},
		{"neither: the owner is named", "team-a/other", Principal{User: "bob"}, AccessUpload, 0, "needs access to org acme and role supplier in space acme/lz (has none)"},
		{"misplaced whoever asks", "team-a/etl", Principal{User: "ann"}, AccessUploadMain, 0, "upload/main is for main spaces: acme/lz is the loading zone, which takes upload"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			subjects := Subjects(tc.owner, tc.caller)
			ds, refused := DecideStorageFor(p, lz, subjects, tc.access)
			require.Len(t, ds, len(subjects))
			assert.Equal(t, tc.refused, refused)
			if refused >= 0 {
				assert.False(t, ds[refused].Allowed)
				assert.Equal(t, tc.missing, ds[refused].Missing)
			}
		})
	}
}

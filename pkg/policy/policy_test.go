package policy

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const example = `owners:
  - serviceAccount: apps/svc-prod-app-1
    environment: prod
    user: integration-test
  - serviceAccount: apps/svc-dev-app-1
    environment: dev
datasets:
  - id: prod-dataset-1
    snapshot: prod/dataset-1/rw
    snapshots: {"2024-01": prod/dataset-1/snap-2024-01}
    environments: [prod]
    readers: [user:user-ds-1, serviceAccount:apps/svc-prod-app-1, serviceAccount:apps/svc-dev-app-1, group:analysts]
groups:
  analysts: [user-ds-2, user-ds-3]
orgs:
  - name: org1
    gcpServiceAccount: aes1-svc@my-project.iam.gserviceaccount.com
    members: [serviceAccount:apps/svc-prod-app-1]
gcp:
  project: my-project
`

func TestParseExample(t *testing.T) {
	p, err := Parse([]byte(example))
	require.NoError(t, err)
	o, ok := p.Owner("apps/svc-prod-app-1")
	require.True(t, ok)
	assert.Equal(t, Environment("prod"), o.Environment)
	assert.Equal(t, "integration-test", o.User)
	_, ok = p.Owner("apps/nobody")
	assert.False(t, ok)

	assert.True(t, p.OwnerCanRead("prod-dataset-1", "apps/svc-prod-app-1"))
	assert.False(t, p.OwnerCanRead("prod-dataset-1", "apps/svc-dev-app-1"), "listed reader, but a dev owner never gets a prod-only dataset")
	assert.False(t, p.OwnerCanRead("no-such", "apps/svc-prod-app-1"))
	assert.True(t, p.CanRead("prod-dataset-1", Principal{User: "user-ds-1"}))
	assert.True(t, p.CanRead("prod-dataset-1", Principal{User: "user-ds-3"}), "through the policy group")
	assert.True(t, p.CanRead("prod-dataset-1", Principal{User: "x", Groups: []string{"analysts"}}), "through an externally asserted group")
	assert.False(t, p.CanRead("prod-dataset-1", Principal{User: "user-ds-4"}))
	assert.False(t, p.CanRead("prod-dataset-1", Principal{User: "apps/svc-prod-app-1"}), "a user named like a service account is not one")

	org, member := p.IsOrgMember("org1", Principal{ServiceAccount: "apps/svc-prod-app-1"})
	assert.True(t, member)
	assert.Equal(t, "aes1-svc@my-project.iam.gserviceaccount.com", org.GCPServiceAccount)
	_, member = p.IsOrgMember("org1", Principal{ServiceAccount: "apps/svc-dev-app-1"})
	assert.False(t, member)
	assert.Len(t, p.OrgsOf(Principal{ServiceAccount: "apps/svc-prod-app-1"}), 1)
	assert.Empty(t, p.OrgsOf(Principal{ServiceAccount: "apps/svc-dev-app-1"}))
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string // all must appear in the error
	}{
		{"empty", "", []string{"policy is empty"}},
		{"whitespace", "  \n\n", []string{"policy is empty"}},
		{"not yaml", "owners: [", []string{"invalid YAML"}},
		{"tabs", "owners:\n\t- x", []string{"invalid YAML", "line 2"}},
		{"unknown top-level field", "owners: []\nadmins: [x]\n", []string{"line 2", "admins"}},
		{"unknown owner field", "owners:\n  - serviceAccount: a/b\n    environment: dev\n    role: admin\n", []string{"line 4", "role"}},
		{"wrong type", "owners: {a: b}\n", []string{"line 1"}},
		{"duplicate key", "owners: []\nowners: []\n", []string{"line 2", "already defined"}},
		{"two documents", "owners: []\n---\nowners: []\n", []string{"single YAML document"}},
		{"unknown environment", "owners:\n  - serviceAccount: a/b\n    environment: staging\n", []string{"line 2", "owners[0] (a/b)", `"staging" is not one of dev, test, prod`}},
		{"missing environment", "owners:\n  - serviceAccount: a/b\n", []string{"owners[0]", "environment"}},
		{"bad service account", "owners:\n  - serviceAccount: justaname\n    environment: dev\n", []string{"must be NAMESPACE/NAME"}},
		{"bad namespace", "owners:\n  - serviceAccount: Apps_1/x\n    environment: dev\n", []string{"namespace"}},
		{"duplicate owner", "owners:\n  - serviceAccount: a/b\n    environment: dev\n  - serviceAccount: a/b\n    environment: prod\n", []string{"line 4", "owners[1] (a/b)", "duplicate owner"}},
		{"duplicate dataset", "datasets:\n  - id: d\n    snapshot: s\n    readers: []\n  - id: d\n    snapshot: t\n    readers: []\n", []string{"line 5", "datasets[1] (d)", "duplicate dataset"}},
		{"bad dataset id", "datasets:\n  - id: ../etc\n    snapshot: s\n", []string{"datasets[0]", "id must be"}},
		{"absolute snapshot", "datasets:\n  - id: d\n    snapshot: /etc\n", []string{"relative"}},
		{"escaping snapshot", "datasets:\n  - id: d\n    snapshot: a/../../etc\n", []string{"clean path"}},
		{"dotdot snapshot", "datasets:\n  - id: d\n    snapshot: ..\n", []string{"clean path"}},
		{"empty snapshot", "datasets:\n  - id: d\n", []string{"snapshot directory is empty"}},
		{"bad named snapshot", "datasets:\n  - id: d\n    snapshot: s\n    snapshots: {old: ../x}\n", []string{"snapshots.old"}},
		{"dataset environment", "datasets:\n  - id: d\n    snapshot: s\n    environments: [qa]\n", []string{`"qa" is not one of`}},
		{"malformed member", "datasets:\n  - id: d\n    snapshot: s\n    readers: [user-ds-1]\n", []string{"line 2", "datasets[0] (d): readers", "must be user:NAME"}},
		{"unknown member kind", "datasets:\n  - id: d\n    snapshot: s\n    readers: [role:x]\n", []string{"unknown kind"}},
		{"undefined group", "datasets:\n  - id: d\n    snapshot: s\n    readers: [group:ghosts]\n", []string{`group "ghosts" is not defined`}},
		{"bad sa member", "datasets:\n  - id: d\n    snapshot: s\n    readers: [serviceAccount:x]\n", []string{"NAMESPACE/NAME"}},
		{"bad org gsa", "gcp: {project: my-project}\norgs:\n  - name: org1\n    gcpServiceAccount: not-an-email\n    members: []\n", []string{"line 3", "orgs[0] (org1)", "gcpServiceAccount"}},
		{"duplicate org", "gcp: {project: my-project}\norgs:\n  - {name: o, gcpServiceAccount: a@p.iam.gserviceaccount.com}\n  - {name: o, gcpServiceAccount: b@p.iam.gserviceaccount.com}\n", []string{"duplicate org"}},
		{"orgs without project", "orgs:\n  - {name: o, gcpServiceAccount: a@p.iam.gserviceaccount.com}\n", []string{"gcp.project"}},
		{"bad project", "gcp: {project: X}\n", []string{"not a valid GCP project id"}},
		{"bad group member", "groups:\n  g: [\"bad name\"]\n", []string{"groups.g"}},
		{"alias bomb", "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n", []string{"invalid"}},
		{"oversized", "owners: []\n#" + strings.Repeat("x", MaxSize), []string{"larger than"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestAllErrorsReported(t *testing.T) {
	_, err := Parse([]byte("owners:\n  - serviceAccount: a/b\n    environment: x\n  - serviceAccount: c\n    environment: dev\n"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "line 2")
	assert.Contains(t, err.Error(), "line 4", "every broken entry is named, not just the first")
}

func TestParseMember(t *testing.T) {
	for in, want := range map[string]Member{
		"user:user-ds-1":              {KindUser, "user-ds-1"},
		"group:analysts":              {KindGroup, "analysts"},
		"serviceAccount:apps/svc-1":   {KindServiceAccount, "apps/svc-1"},
		"user:first.last@example.com": {KindUser, "first.last@example.com"},
	} {
		m, err := ParseMember(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, m)
		assert.Equal(t, in, m.String())
	}
	for _, bad := range []string{"", "user:", ":x", "user", "user: x", "user:a/b", "serviceAccount:a", "serviceAccount:a/b/c", "User:x", "user:\x00"} {
		_, err := ParseMember(bad)
		assert.Error(t, err, bad)
	}
}

func FuzzPolicy(f *testing.F) {
	f.Add([]byte(example))
	f.Add([]byte("owners:\n  - serviceAccount: a/b\n    environment: dev\n"))
	f.Add([]byte("datasets:\n  - id: d\n    snapshot: s\n    readers: [group:g]\ngroups: {g: [u]}\n"))
	f.Add([]byte("a: &a [x]\nb: [*a, *a]\n"))
	f.Add([]byte(storageBase + "        - {name: raw, bucket: acme-raw, prefix: raw/, suppliers: [group:loaders]}\n        - {name: lz, bucket: acme-raw, prefix: lz/, loadingZone: true}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			if p != nil {
				t.Fatal("policy returned with an error")
			}
			return
		}
		// A policy that parses is internally consistent: every owner and dataset is indexed,
		// snapshot paths stay inside the root, and queries never panic.
		for _, o := range p.Owners {
			got, ok := p.Owner(o.ServiceAccount)
			if !ok || got.Environment != o.Environment || !o.Environment.Valid() {
				t.Fatalf("owner %q not indexed consistently", o.ServiceAccount)
			}
		}
		for _, d := range p.Datasets {
			if ValidSnapshotDir(d.Snapshot) != nil || strings.Contains(d.Snapshot, "..") && strings.HasPrefix(d.Snapshot, "..") {
				t.Fatalf("snapshot %q escapes the root", d.Snapshot)
			}
			for _, o := range p.Owners {
				p.OwnerCanRead(d.ID, o.ServiceAccount)
			}
			p.CanRead(d.ID, Principal{User: "u", Groups: []string{"g"}})
		}
		// Spaces are valid, never share objects, and decisions never panic.
		var spaces []Space
		for _, o := range p.Orgs {
			if o.Storage == nil {
				continue
			}
			for _, s := range o.Storage.Spaces {
				if len(SpaceErrors(s)) > 0 || strings.ContainsAny(s.Prefix+s.Bucket, `'"\`) {
					t.Fatalf("space %+v passed with bad fields", s)
				}
				for _, other := range spaces {
					if Overlap(s, other) {
						t.Fatalf("spaces %q and %q overlap", s.Name, other.Name)
					}
				}
				spaces = append(spaces, s)
				sp, ok := p.StorageSpace(o.Name, s.Name)
				if !ok {
					t.Fatalf("space %s/%s not found", o.Name, s.Name)
				}
				for _, a := range append(Accesses, "bogus") {
					if d := DecideStorage(p, sp, Principal{User: "u", Groups: []string{"g"}}, a); d.Allowed && !a.Valid() {
						t.Fatal("an unknown access kind was granted")
					}
				}
			}
		}
	})
}

func TestValidServiceAccountMatchesKubernetes(t *testing.T) {
	for sa, ok := range map[string]bool{
		"apps/svc-1": true, "a/b": true, "apps/sa.with.dots": true, "a1-b2/c": true,
		"Apps/x": false, "-apps/x": false, "apps-/x": false, "apps/-x": false, "apps/x-": false,
		"apps/x..y": false, "apps/.x": false, "apps/X": false, "apps/x_y": false, "a.b/x": false,
		strings.Repeat("a", 63) + "/x": true, strings.Repeat("a", 64) + "/x": false,
		"a/" + strings.Repeat("b", 253): true, "a/" + strings.Repeat("b", 254): false,
		"/x": false, "a/": false, "a/b/c": false,
	} {
		assert.Equal(t, ok, ValidServiceAccount(sa) == nil, sa)
	}
}

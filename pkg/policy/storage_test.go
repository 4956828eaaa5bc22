package policy

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const storageBase = `
groups:
  loaders: [alice]
gcp: {project: proj-1234}
orgs:
  - name: acme
    gcpServiceAccount: acme@proj-1234.iam.gserviceaccount.com
    storage:
      topic: acme-commits
      spaces:
`

func TestStorageParseErrors(t *testing.T) {
	cases := []struct{ name, spaces, want string }{
		{"bad bucket", `        - {name: raw, bucket: Bad_Bucket!, prefix: raw/}`, `bucket "Bad_Bucket!"`},
		{"goog bucket", `        - {name: raw, bucket: google-x, prefix: raw/}`, `bucket "google-x"`},
		{"prefix without slash", `        - {name: raw, bucket: acme-raw, prefix: raw}`, `prefix "raw" must be`},
		{"prefix escaping", `        - {name: raw, bucket: acme-raw, prefix: ../x/}`, `prefix "../x/"`},
		{"absolute prefix", `        - {name: raw, bucket: acme-raw, prefix: /x/}`, `prefix "/x/"`},
		{"dot part", `        - {name: raw, bucket: acme-raw, prefix: a/./b/}`, `'.' or '..' part`},
		{"bad name", `        - {name: Raw_1, bucket: acme-raw, prefix: raw/}`, `space name "Raw_1"`},
		{"bad visibility", `        - {name: raw, bucket: acme-raw, prefix: raw/, visibility: secret}`, `visibility "secret"`},
		{"unknown field", `        - {name: raw, bucket: acme-raw, prefix: raw/, acess: [user:x]}`, `field acess not found`},
		{"undefined group", `        - {name: raw, bucket: acme-raw, prefix: raw/, users: [group:nobody]}`, `group "nobody" is not defined`},
		{"bad member", `        - {name: raw, bucket: acme-raw, prefix: raw/, trustees: [robot:x]}`, `unknown kind "robot"`},
		{"duplicate", "        - {name: raw, bucket: acme-raw, prefix: raw/}\n        - {name: raw, bucket: acme-raw, prefix: other/}", `duplicate space`},
		{"two loading zones", "        - {name: lz, bucket: acme-lz, prefix: a/, loadingZone: true}\n        - {name: lz2, bucket: acme-lz, prefix: b/, loadingZone: true}", `at most one loading zone`},
		{"same prefix", "        - {name: a, bucket: acme-raw, prefix: raw/}\n        - {name: b, bucket: acme-raw, prefix: raw/}", `space acme/b overlaps space acme/a: both reach gs://acme-raw/raw/`},
		{"nested prefix", "        - {name: a, bucket: acme-raw, prefix: raw/}\n        - {name: b, bucket: acme-raw, prefix: raw/sub/}", `space acme/b overlaps space acme/a: both reach gs://acme-raw/raw/sub/`},
		{"whole bucket", "        - {name: a, bucket: acme-raw, prefix: raw/}\n        - {name: b, bucket: acme-raw}", `space acme/b overlaps space acme/a`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(storageBase + c.spaces + "\n"))
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
			assert.Contains(t, err.Error(), "line ", "errors name the line")
		})
	}
}

func TestStorageParseOrgLevelErrors(t *testing.T) {
	for name, c := range map[string]struct{ doc, want string }{
		"loading zone without topic": {`
gcp: {project: proj-1234}
orgs:
  - name: acme
    gcpServiceAccount: acme@proj-1234.iam.gserviceaccount.com
    storage:
      spaces: [{name: lz, bucket: acme-lz, loadingZone: true}]
`, "the loading zone needs storage.topic"},
		"bad topic": {`
gcp: {project: proj-1234}
orgs:
  - name: acme
    gcpServiceAccount: acme@proj-1234.iam.gserviceaccount.com
    storage: {topic: "goog-x"}
`, `topic "goog-x"`},
		"overlap across orgs": {`
gcp: {project: proj-1234}
orgs:
  - name: acme
    gcpServiceAccount: acme@proj-1234.iam.gserviceaccount.com
    storage: {spaces: [{name: a, bucket: shared-b, prefix: x/}]}
  - name: beta
    gcpServiceAccount: beta@proj-1234.iam.gserviceaccount.com
    storage: {spaces: [{name: a, bucket: shared-b, prefix: x/y/}]}
`, "space beta/a overlaps space acme/a"},
		"bad admin": {`
storage: {admins: [nobody]}
owners: []
`, `member "nobody"`},
		"unknown storage field": {`
storage: {admin: [user:x]}
owners: []
`, "field admin not found"},
		"undefined public group": {`
storage: {allPublic: {orgs: [group:staff]}}
owners: []
`, `group "staff" is not defined`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(c.doc))
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
		})
	}
}

func TestStorageParseGood(t *testing.T) {
	p, err := Parse([]byte(storageBase + `        - {name: raw, bucket: acme-raw, prefix: raw/}
        - {name: raw-old, bucket: acme-raw, prefix: raw-old/, visibility: public}
        - {name: other, bucket: acme-other}
        - {name: lz, bucket: acme-lz, prefix: incoming/, loadingZone: true, suppliers: [group:loaders]}
`))
	require.NoError(t, err, "raw/ and raw-old/ do not overlap; a whole bucket of its own is fine")
	sp, ok := p.StorageSpace("acme", "lz")
	require.True(t, ok)
	assert.True(t, sp.Space.LoadingZone)
	assert.Equal(t, "acme-commits", sp.Store.Topic)
	assert.Equal(t, "acme@proj-1234.iam.gserviceaccount.com", sp.Org.GCPServiceAccount)
	assert.Equal(t, VisibilityPrivate, sp.Space.EffectiveVisibility())
	_, ok = p.StorageSpace("acme", "nope")
	assert.False(t, ok)
	_, ok = p.StorageSpace("nope", "raw")
	assert.False(t, ok)
}

func TestValidObjectName(t *testing.T) {
	good := []string{"a", "a/b.csv", "dir/sub/file-1_2=3.parquet", "ünïcode/ok", strings.Repeat("x", 1000)}
	bad := []string{"", "/abs", `\win`, "../x", "a/../b", "a//b", "a/", ".", "..", "a/./b", "nul\x00", "tab\tname", `back\slash`, strings.Repeat("x", 1020)}
	for _, s := range good {
		assert.NoError(t, ValidObjectName("prefix/", s), s)
	}
	for _, s := range bad {
		assert.Error(t, ValidObjectName("prefix/", s), "%q", s)
	}
	assert.NoError(t, ValidRootDir("p/", "batch-1/"))
	assert.Error(t, ValidRootDir("p/", "../"))
}

func FuzzValidObjectName(f *testing.F) {
	for _, s := range []string{"a/b", "../x", "a//b", "x\x00", "ok.csv"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if ValidObjectName("space/", name) != nil {
			return
		}
		// Whatever passes stays inside the space: joined to the prefix and cleaned, it keeps it.
		full := "space/" + name
		if !strings.HasPrefix(full, "space/") || strings.Contains("/"+name+"/", "/../") || strings.Contains(name, "//") {
			t.Fatalf("%q escapes or is unclean", name)
		}
	})
}

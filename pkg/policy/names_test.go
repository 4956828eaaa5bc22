package policy

import (
	"regexp"
	"strings"
	"testing"
)

// The regular expressions the shapes in names.go replaced: each validator must accept exactly
// what its expression did.
var nameExpressions = []struct {
	name  string
	check func(string) bool
	re    *regexp.Regexp
}{
	{"dataset id", func(s string) bool { return ValidDatasetID(s) == nil }, regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)},
	{"user", func(s string) bool { return ValidUser(s) == nil }, regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@+-]{0,254}$`)},
	{"org", func(s string) bool { return ValidOrgName(s) == nil }, regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)},
	{"space", func(s string) bool { return ValidSpaceName(s) == nil }, regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)},
	{"project", projectID.Match, regexp.MustCompile(`^[a-z][a-z0-9-]{4,28}[a-z0-9]$`)},
	{"bucket", func(s string) bool {
		return ValidBucket(s) == nil || strings.HasPrefix(s, "goog") && bucketName.Match(s)
	},
		regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{1,61}[a-z0-9]$`)},
	{"topic", topicID.Match, regexp.MustCompile(`^[A-Za-z][A-Za-z0-9._~+%-]{2,254}$`)},
	{"prefix", func(s string) bool { return strings.HasSuffix(s, "/") && prefixPart.Parts(s[:len(s)-1], '/') },
		regexp.MustCompile(`^[A-Za-z0-9._=-]+(/[A-Za-z0-9._=-]+)*/$`)},
	{"service account", func(s string) bool { return ValidServiceAccount(s) == nil }, regexp.MustCompile(
		`^[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)},
}

func checkNames(t *testing.T, s string) {
	for _, c := range nameExpressions {
		want := c.re.MatchString(s)
		if c.name == "service account" { // the expression has no length bounds; the validator does
			ns, name, _ := strings.Cut(s, "/")
			want = want && len(ns) <= 63 && len(name) <= 253
		}
		if got := c.check(s); got != want {
			t.Errorf("%s %q: accepted %v, the expression says %v", c.name, s, got, want)
		}
	}
}

func TestNamesAgreeWithTheirExpressions(t *testing.T) {
	long := strings.Repeat("a", 300)
	seeds := []string{"", "a", "-", "a-", "-a", "ab", "abc", "a_b", "a.b", "a@b", "a+b", "A", "Ab",
		"my-project", "my-proj-", "1project", "goog-bucket", "raw/", "raw", "raw//", "/raw/", "a/b/", "a/./",
		"apps/bench", "apps/a.b", "apps/a..b", "apps/", "/a", "a/b/c", "Apps/x", "a\n", "a\x00", "é", "topic~1%"}
	for n := 0; n <= 300; n++ {
		seeds = append(seeds, long[:n], "apps/"+long[:n], long[:n]+"/x", "a"+long[:n]+"-")
	}
	for _, s := range seeds {
		checkNames(t, s)
	}
}

func FuzzNames(f *testing.F) {
	for _, s := range []string{"a", "a-b.c", "raw/2024/", "apps/bench", "my-project", "a@b+c", "goog1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkNames(t, s) })
}

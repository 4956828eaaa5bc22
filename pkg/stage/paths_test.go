package stage

import (
	"regexp"
	"strings"
	"testing"
)

// ValidStagedName accepts exactly what the expression it replaced did.
func FuzzValidStagedName(f *testing.F) {
	re := regexp.MustCompile(`^[0-9a-f]{20}-[A-Za-z0-9._-]{1,80}$`)
	for _, s := range []string{"0123456789abcdef0123-a.csv", "0123456789abcdef0123-", "0123456789ABCDEF0123-a", "0123456789abcdef0123_a",
		"0123456789abcdef012-a", "0123456789abcdef0123-" + strings.Repeat("x", 80), "0123456789abcdef0123-" + strings.Repeat("x", 81), "", "-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := ValidStagedName(s) == nil, re.MatchString(s); got != want {
			t.Errorf("ValidStagedName(%q) accepts %v, the expression %v", s, got, want)
		}
	})
}

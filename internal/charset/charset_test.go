package charset

import (
	"regexp"
	"testing"
)

func TestNew(t *testing.T) {
	s := New("a-c_-")
	for c := 0; c < 256; c++ {
		want := c == 'a' || c == 'b' || c == 'c' || c == '_' || c == '-'
		if s[c] != want {
			t.Errorf("New(%q)[%q] = %v, want %v", "a-c_-", rune(c), s[c], want)
		}
	}
	for _, bad := range []string{"z-a", "a-\u00e9"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("New(%q) did not panic", bad)
				}
			}()
			New(bad)
		}()
	}
}

var (
	alnum = New("A-Za-z0-9")
	word  = New("A-Za-z0-9._-")
	label = Name{First: New("a-z0-9"), Rest: New("a-z0-9-"), Last: New("a-z0-9"), Min: 1}
)

// Each shape against the regular expression it stands for.
var shapes = []struct {
	name  Name
	parts byte // Parts with this separator instead of Match
	re    *regexp.Regexp
}{
	{Name{First: alnum, Rest: word, Min: 1, Max: 128}, 0, regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)},
	{Name{First: alnum, Rest: word, Min: 1}, 0, regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)},
	{Name{First: New("a-z"), Rest: New("a-z0-9-"), Last: New("a-z0-9"), Min: 6, Max: 30}, 0, regexp.MustCompile(`^[a-z][a-z0-9-]{4,28}[a-z0-9]$`)},
	{label, 0, regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)},
	{label, '.', regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)},
	{Name{First: word, Rest: word, Min: 1}, '/', regexp.MustCompile(`^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$`)},
}

func check(t *testing.T, s string) {
	for i, c := range shapes {
		got := c.name.Match(s)
		if c.parts != 0 {
			got = c.name.Parts(s, c.parts)
		}
		if want := c.re.MatchString(s); got != want {
			t.Errorf("shape %d (%s) on %q: %v, the expression says %v", i, c.re, s, got, want)
		}
	}
}

func TestShapesAgreeWithTheirExpressions(t *testing.T) {
	for _, s := range []string{"", "a", "A", "-", "a-", "-a", "a-b", "ab.c", "a..b", ".a", "a.", "abcdef", "abcde-",
		"a/b", "a//b", "/a", "a/", "..", "abc\n", "ab\x00c", "é", "a\u00e9",
		"abcdefghijklmnopqrstuvwxyz0123", "abcdefghijklmnopqrstuvwxyz01234",
		string(make([]byte, 128)), "a" + string(make([]byte, 127))} {
		check(t, s)
	}
	long := make([]byte, 200)
	for i := range long {
		long[i] = 'a'
	}
	for n := 120; n <= 200; n++ {
		check(t, string(long[:n]))
	}
}

func FuzzShapes(f *testing.F) {
	for _, s := range []string{"a", "a-b.c", "abc/def", "x..y", "a-", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { check(t, s) })
}

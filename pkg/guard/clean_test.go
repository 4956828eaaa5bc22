package guard

import (
	"path"
	"testing"
)

// isCleanAbs is a fast path for path.Clean: it must never call a path clean that Clean changes.
func FuzzIsCleanAbs(f *testing.F) {
	for _, s := range []string{"/", "", "/a", "/a/", "a", "/a//b", "/a/./b", "/a/../b", "/.", "/..", "/a/.", "/a/..", "/...", "/a/.b", "//"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if got, want := isCleanAbs(p), path.Clean("/"+p) == p; got != want {
			t.Fatalf("isCleanAbs(%q) = %v, path.Clean says %v", p, got, want)
		}
	})
}

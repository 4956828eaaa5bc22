package stage

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/warden-dev/warden/internal/charset"
)

// MaxPathLen bounds a requested path (Linux PATH_MAX).
const MaxPathLen = 4096

// CleanRelPath accepts a path relative to a snapshot: slash-separated, no empty, "." or ".."
// elements, no leading slash, no backslash, no NUL, valid UTF-8. It rejects rather than cleans:
// a request that needed cleaning is either a bug or an attack, and either way the caller should
// hear about it. (os.Root enforces containment again when the file is opened; this check gives
// the clear error.) allowEmpty permits "" for "the snapshot root" in listings.
func CleanRelPath(p string, allowEmpty bool) (string, error) {
	switch {
	case p == "" && allowEmpty:
		return ".", nil
	case p == "":
		return "", fmt.Errorf("%w: path is empty", ErrBadPath)
	case len(p) > MaxPathLen:
		return "", fmt.Errorf("%w: path is longer than %d bytes", ErrBadPath, MaxPathLen)
	case strings.ContainsRune(p, 0):
		return "", fmt.Errorf("%w: path contains a NUL byte", ErrBadPath)
	case !utf8.ValidString(p):
		return "", fmt.Errorf("%w: path is not valid UTF-8", ErrBadPath)
	case strings.ContainsRune(p, '\\'):
		return "", fmt.Errorf("%w: path contains a backslash; use / as the separator", ErrBadPath)
	case strings.HasPrefix(p, "/"):
		return "", fmt.Errorf("%w: path must be relative to the dataset, not absolute", ErrBadPath)
	}
	for _, el := range strings.Split(p, "/") {
		switch el {
		case "..":
			return "", fmt.Errorf("%w: path must not contain '..'", ErrBadPath)
		case "", ".":
			return "", fmt.Errorf("%w: path has an empty or '.' element (double or trailing slash?)", ErrBadPath)
		}
		for _, r := range el {
			if r < 0x20 || r == 0x7f {
				return "", fmt.Errorf("%w: path contains a control character", ErrBadPath)
			}
		}
	}
	return p, nil
}

// The shape of names Stage hands out, [0-9a-f]{20}-[A-Za-z0-9._-]{1,80}: 20 hex digits, '-', a
// sanitized base name.
var (
	stagedID    = charset.New("0-9a-f")
	stagedChars = charset.New("A-Za-z0-9._-")
	stagedBase  = charset.Name{First: stagedChars, Rest: stagedChars, Min: 1, Max: 80}
)

// ValidStagedName checks a name from DELETE /v1/staged/{name}.
func ValidStagedName(name string) error {
	if len(name) < 22 || !stagedID.All(name[:20]) || name[20] != '-' || !stagedBase.Match(name[21:]) {
		return fmt.Errorf("%w: %q is not a staged file name", ErrBadRequest, name)
	}
	return nil
}

// baseName turns the last element of a source path into something safe to keep in the staged
// file's name, so apps (and pandas) still see the extension.
func baseName(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		p = p[i+1:]
	}
	b := []byte(p)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	s := strings.TrimLeft(string(b), ".")
	if len(s) > 80 {
		s = s[len(s)-80:]
	}
	if s == "" {
		s = "file"
	}
	return s
}

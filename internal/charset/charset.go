// Package charset checks names against character-class shapes: a first character from one set,
// the rest from another, optionally a last from a third, within length bounds. These are the
// shapes Warden's identifiers have (dataset ids, users, orgs, buckets, secret keys, staged
// names). Regular expressions said the same, but Go compiles a bounded repetition such as
// [a-z0-9-]{0,62} into one instruction per repetition: the dozen patterns a sidecar linked
// held 0.4 MB of heap for the life of the process, a third of what the sidecar keeps live.
package charset

// Set is a set of ASCII bytes; a byte ≥ 0x80 is never in it.
type Set [256]bool

// New returns the set a bracket expression's body spells: single characters and ranges a-z, as
// in "A-Za-z0-9._-" (a '-' first or last is itself). It panics on a malformed spec: specs are
// constants.
func New(spec string) *Set {
	var s Set
	for i := 0; i < len(spec); i++ {
		lo, hi := spec[i], spec[i]
		if i+2 < len(spec) && spec[i+1] == '-' {
			hi = spec[i+2]
			i += 2
		}
		if lo > hi || hi >= 0x80 {
			panic("charset: bad spec " + spec)
		}
		for c := int(lo); c <= int(hi); c++ {
			s[c] = true
		}
	}
	return &s
}

// All reports whether every byte of str is in s (true for "").
func (s *Set) All(str string) bool {
	for i := 0; i < len(str); i++ {
		if !s[str[i]] {
			return false
		}
	}
	return true
}

// Name is a name's shape: one byte of First, then bytes of Rest, the final one (when the name
// has two or more and Last is set) of Last; Min to Max bytes long (Max 0: no bound).
type Name struct {
	First, Rest, Last *Set
	Min, Max          int
}

// Match reports whether str has the shape.
func (n Name) Match(str string) bool {
	if len(str) == 0 || len(str) < n.Min || (n.Max > 0 && len(str) > n.Max) || !n.First[str[0]] {
		return false
	}
	rest := str[1:]
	if n.Last != nil && len(rest) > 0 {
		if !n.Last[rest[len(rest)-1]] {
			return false
		}
		rest = rest[:len(rest)-1]
	}
	return n.Rest.All(rest)
}

// Parts reports whether str is one or more parts, separated by sep, each of the shape.
func (n Name) Parts(str string, sep byte) bool {
	for {
		i := 0
		for i < len(str) && str[i] != sep {
			i++
		}
		if !n.Match(str[:i]) {
			return false
		}
		if i == len(str) {
			return true
		}
		str = str[i+1:]
	}
}

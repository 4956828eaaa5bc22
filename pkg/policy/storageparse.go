package policy

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// buildStorage validates the storage roles and every org's spaces, and parses their members.
func (p *Policy) buildStorage(root *yaml.Node, fail func(int, string, ...any), members func(string, int, []string) []Member) {
	line := keyLine(root, "storage", "")
	p.Storage.admins = members("storage.admins", line, p.Storage.Admins)
	p.Storage.AllPublic.orgs = members("storage.allPublic.orgs", line, p.Storage.AllPublic.Orgs)
	p.Storage.AllPublic.spaces = members("storage.allPublic.spaces", line, p.Storage.AllPublic.Spaces)

	var all []spaceAt
	for i := range p.Orgs {
		o := &p.Orgs[i]
		if o.Storage == nil {
			continue
		}
		line := itemLine(root, "orgs", i)
		where := fmt.Sprintf("orgs[%d] (%s): storage", i, o.Name)
		st := o.Storage
		st.access = members(where+".access", line, st.Access)
		parseGrants(&st.RoleGrants, where, line, members)
		if st.Topic != "" {
			if err := ValidTopic(st.Topic); err != nil {
				fail(line, "%s.topic: %v", where, err)
			}
		}
		seen := map[string]bool{}
		zones := 0
		for j := range st.Spaces {
			s := &st.Spaces[j]
			sw := fmt.Sprintf("%s.spaces[%d] (%s)", where, j, s.Name)
			for _, err := range SpaceErrors(*s) {
				fail(line, "%s: %v", sw, err)
			}
			if seen[s.Name] {
				fail(line, "%s: duplicate space", sw)
			}
			seen[s.Name] = true
			if s.LoadingZone {
				zones++
				if zones == 2 {
					fail(line, "%s: an org has at most one loading zone", sw)
				}
				if st.Topic == "" {
					fail(line, "%s: the loading zone needs storage.topic (commits are published there)", sw)
				}
			}
			parseGrants(&s.RoleGrants, sw, line, members)
			all = append(all, spaceAt{org: o.Name, space: *s, line: line})
		}
	}
	overlaps(all, fail)
}

func parseGrants(g *RoleGrants, where string, line int, members func(string, int, []string) []Member) {
	g.users = members(where+".users", line, g.Users)
	g.suppliers = members(where+".suppliers", line, g.Suppliers)
	g.trustees = members(where+".trustees", line, g.Trustees)
}

// SpaceErrors checks one space's own fields.
func SpaceErrors(s Space) []error {
	var errs []error
	if err := ValidSpaceName(s.Name); err != nil {
		errs = append(errs, err)
	}
	if err := ValidBucket(s.Bucket); err != nil {
		errs = append(errs, err)
	}
	if err := ValidPrefix(s.Prefix); err != nil {
		errs = append(errs, err)
	}
	if !s.Visibility.Valid() {
		errs = append(errs, fmt.Errorf("visibility %q is not one of public, internal, private", s.Visibility))
	}
	return errs
}

type spaceAt struct {
	org   string
	space Space
	line  int
}

// Overlap reports whether two spaces share objects: the same bucket with one prefix covering
// the other's. A role in one would reach the other's objects, so no two spaces may overlap.
func Overlap(a, b Space) bool {
	return a.Bucket == b.Bucket && (strings.HasPrefix(a.Prefix, b.Prefix) || strings.HasPrefix(b.Prefix, a.Prefix))
}

// overlaps reports every pair of overlapping spaces, at the later one's line.
func overlaps(spaces []spaceAt, fail func(int, string, ...any)) {
	for i, s := range spaces {
		for _, o := range spaces[:i] {
			if Overlap(s.space, o.space) {
				fail(s.line, "space %s/%s overlaps space %s/%s: both reach gs://%s/%s",
					s.org, s.space.Name, o.org, o.space.Name, s.space.Bucket, longer(s.space.Prefix, o.space.Prefix))
			}
		}
	}
}

func longer(a, b string) string {
	if len(a) > len(b) {
		return a
	}
	return b
}

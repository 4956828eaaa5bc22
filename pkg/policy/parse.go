package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"os"
	"path"
	"strings"

	"go.yaml.in/yaml/v3"
)

// MaxSize bounds a policy file. A ConfigMap holds at most 1 MiB; anything larger is a mistake
// or an attack, and is refused before parsing.
const MaxSize = 4 << 20

// Load reads and parses a policy file.
func Load(file string) (*Policy, error) {
	data, err := readLimited(file)
	if err != nil {
		return nil, err
	}
	p, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return p, nil
}

func readLimited(file string) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if len(data) > MaxSize {
		return nil, fmt.Errorf("%s: policy file is larger than %d bytes", file, MaxSize)
	}
	return data, nil
}

// Parse parses and validates one policy document. Errors name the line (YAML errors, unknown
// fields) or the entry and its line (validation errors).
func Parse(data []byte) (*Policy, error) {
	if len(data) > MaxSize {
		return nil, fmt.Errorf("policy is larger than %d bytes", MaxSize)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		// An empty policy would deny everything; far more often it is a truncated write.
		return nil, errors.New("policy is empty")
	}
	// The node tree is kept for line numbers in validation errors.
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("invalid YAML: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var p Policy
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("invalid policy: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("policy must be a single YAML document (found a second '---' document)")
	}
	if err := p.build(&root); err != nil {
		return nil, err
	}
	return &p, nil
}

// ValidUser checks a user or group name (a reader, a caller): 1-255 letters, digits and
// . _ @ + -, starting with a letter or digit. The sidecar and the broker check callers with it.
func ValidUser(s string) error {
	if !userName.Match(s) {
		return fmt.Errorf("name %q must be 1-255 letters, digits or . _ @ + -, starting with a letter or digit", s)
	}
	return nil
}

// ValidDatasetID checks a dataset id: 1-128 letters, digits and . _ -, starting with a letter
// or digit. The sidecar checks ids in request paths with it.
func ValidDatasetID(s string) error {
	if !datasetID.Match(s) {
		return fmt.Errorf("dataset id %q must be 1-128 letters, digits or . _ -, starting with a letter or digit", s)
	}
	return nil
}

// ValidServiceAccount checks "namespace/name" with Kubernetes' own name rules.
func ValidServiceAccount(s string) error {
	ns, name, ok := strings.Cut(s, "/")
	if !ok {
		return fmt.Errorf("service account %q must be NAMESPACE/NAME", s)
	}
	if len(ns) > 63 || !dns1123Label.Match(ns) {
		return fmt.Errorf("service account %q: namespace must be at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit", s)
	}
	if len(name) > 253 || !dns1123Label.Parts(name, '.') {
		return fmt.Errorf("service account %q: name must be at most 253 lower-case letters, digits, '-' and '.', each part starting and ending with a letter or digit", s)
	}
	return nil
}

// ValidSnapshotDir accepts a clean relative path that stays under the snapshot root.
func ValidSnapshotDir(s string) error {
	switch {
	case s == "":
		return errors.New("snapshot directory is empty")
	case strings.ContainsRune(s, 0):
		return errors.New("snapshot directory contains a NUL byte")
	case path.IsAbs(s) || strings.HasPrefix(s, `\`):
		return fmt.Errorf("snapshot directory %q must be relative to the snapshot root", s)
	case path.Clean(s) != strings.TrimSuffix(s, "/") || s == "." || strings.HasPrefix(path.Clean(s), ".."):
		return fmt.Errorf("snapshot directory %q must be a clean path without . or .. elements", s)
	}
	return nil
}

// build validates the decoded policy and builds its indexes.
func (p *Policy) build(root *yaml.Node) error {
	b := &builder{p: p, root: root}
	b.groups()
	b.owners()
	b.datasets()
	p.indexReaders()
	b.orgs()
	p.buildStorage(root, b.fail, b.members)
	if p.GCP.Project != "" && !projectID.Match(p.GCP.Project) {
		b.fail(keyLine(root, "gcp", "project"), "gcp.project %q is not a valid GCP project id", p.GCP.Project)
	}
	if len(p.Orgs) > 0 && p.GCP.Project == "" {
		b.fail(keyLine(root, "orgs", ""), "orgs need gcp.project (the workload identity pool is PROJECT.svc.id.goog)")
	}
	return errors.Join(b.errs...)
}

// builder checks a parsed policy section by section and indexes it, collecting every mistake
// with the line it is on.
type builder struct {
	p    *Policy
	root *yaml.Node
	errs []error
}

func (b *builder) fail(line int, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if line > 0 {
		msg = fmt.Sprintf("line %d: %s", line, msg)
	}
	b.errs = append(b.errs, errors.New(msg))
}

// members parses a reader or member list; groups must be defined under groups.
func (b *builder) members(where string, line int, in []string) []Member {
	out := make([]Member, 0, len(in))
	for _, s := range in {
		m, err := ParseMember(s)
		if err != nil {
			b.fail(line, "%s: %v", where, err)
			continue
		}
		if m.Kind == KindGroup {
			if _, ok := b.p.Groups[m.Name]; !ok {
				b.fail(line, "%s: group %q is not defined under groups", where, m.Name)
				continue
			}
		}
		out = append(out, m)
	}
	return out
}

func (b *builder) groups() {
	p := b.p
	p.memberOf = map[string][]string{}
	for g, users := range p.Groups {
		line := keyLine(b.root, "groups", g)
		if err := ValidUser(g); err != nil {
			b.fail(line, "groups.%s: %v", g, err)
		}
		for _, u := range users {
			if err := ValidUser(u); err != nil {
				b.fail(line, "groups.%s: member: %v", g, err)
				continue
			}
			p.memberOf[u] = append(p.memberOf[u], g)
		}
	}
}

func (b *builder) owners() {
	p := b.p
	p.owners = make(map[string]*Owner, len(p.Owners))
	for i := range p.Owners {
		o := &p.Owners[i]
		line := itemLine(b.root, "owners", i)
		where := fmt.Sprintf("owners[%d] (%s)", i, o.ServiceAccount)
		if err := ValidServiceAccount(o.ServiceAccount); err != nil {
			b.fail(line, "%s: %v", where, err)
		}
		if err := o.Environment.Check(); err != nil {
			b.fail(line, "%s: %v", where, err)
		}
		if o.User != "" {
			if err := ValidUser(o.User); err != nil {
				b.fail(line, "%s: user: %v", where, err)
			}
		}
		if _, dup := p.owners[o.ServiceAccount]; dup {
			b.fail(line, "%s: duplicate owner (each service account is listed once, in exactly one environment)", where)
		}
		p.owners[o.ServiceAccount] = o
	}
}

func (b *builder) datasets() {
	p := b.p
	p.datasets = make(map[string]*Dataset, len(p.Datasets))
	for i := range p.Datasets {
		d := &p.Datasets[i]
		line := itemLine(b.root, "datasets", i)
		where := fmt.Sprintf("datasets[%d] (%s)", i, d.ID)
		if !datasetID.Match(d.ID) {
			b.fail(line, "%s: id must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit", where)
		}
		if err := ValidSnapshotDir(d.Snapshot); err != nil {
			b.fail(line, "%s: %v", where, err)
		}
		for name, dir := range d.Snapshots {
			if !datasetID.Match(name) {
				b.fail(line, "%s: snapshot name %q must be letters, digits, '.', '_' or '-'", where, name)
			}
			if err := ValidSnapshotDir(dir); err != nil {
				b.fail(line, "%s: snapshots.%s: %v", where, name, err)
			}
		}
		for _, e := range d.Environments {
			if err := e.Check(); err != nil {
				b.fail(line, "%s: %v", where, err)
			}
		}
		d.readers = b.members(where+": readers", line, d.Readers)
		if _, dup := p.datasets[d.ID]; dup {
			b.fail(line, "%s: duplicate dataset id", where)
		}
		p.datasets[d.ID] = d
	}
}

func (b *builder) orgs() {
	seen := map[string]bool{}
	for i := range b.p.Orgs {
		o := &b.p.Orgs[i]
		line := itemLine(b.root, "orgs", i)
		where := fmt.Sprintf("orgs[%d] (%s)", i, o.Name)
		if !orgName.Match(o.Name) {
			b.fail(line, "%s: name must be lower-case letters, digits and '-'", where)
		}
		if seen[o.Name] {
			b.fail(line, "%s: duplicate org", where)
		}
		seen[o.Name] = true
		if err := ValidGCPServiceAccount(o.GCPServiceAccount); err != nil {
			b.fail(line, "%s: %v", where, err)
		}
		o.members = b.members(where+": members", line, o.Members)
	}
}

// ValidOrgName checks an org name: lower-case letters, digits and '-', at most 63.
func ValidOrgName(s string) error {
	if !orgName.Match(s) {
		return fmt.Errorf("org name %q must be at most 63 lower-case letters, digits and '-'", s)
	}
	return nil
}

// ValidGCPServiceAccount checks a GCP service account e-mail.
func ValidGCPServiceAccount(s string) error {
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" || !strings.HasSuffix(s, ".gserviceaccount.com") {
		return fmt.Errorf("gcpServiceAccount %q must be a GCP service account email (NAME@PROJECT.iam.gserviceaccount.com)", s)
	}
	return nil
}

// topValue returns the value node of a top-level key.
func topValue(root *yaml.Node, key string) *yaml.Node {
	if root == nil || len(root.Content) == 0 {
		return nil
	}
	return mapValue(root.Content[0], key)
}

func mapValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// itemLine is the line of the i-th item of a top-level sequence, 0 when unknown.
func itemLine(root *yaml.Node, key string, i int) int {
	if n := topValue(root, key); n != nil && n.Kind == yaml.SequenceNode && i < len(n.Content) {
		return n.Content[i].Line
	}
	return 0
}

// keyLine is the line of a second-level key (or of the top-level key when sub is empty).
func keyLine(root *yaml.Node, key, sub string) int {
	n := topValue(root, key)
	if n == nil {
		return 0
	}
	if sub != "" {
		if m := mapValue(n, sub); m != nil {
			return m.Line
		}
	}
	return n.Line
}

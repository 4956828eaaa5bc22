package clusterpolicy

import (
	"errors"
	"fmt"
	"strings"

	"github.com/warden-dev/warden/pkg/contract"
	"github.com/warden-dev/warden/pkg/policy"
)

// notClaimedError is a Dataset whose id its namespace's warden.dev/dataset-ids does not list.
type notClaimedError struct{ msg string }

func (e *notClaimedError) Error() string { return e.msg }

// idClaims are the dataset ids a namespace's Datasets may take (warden.dev/dataset-ids): exact
// ids and prefixes. A namespace without the annotation claims every id (nil claims); one whose
// annotation cannot be read claims none, so a typo by the admin never opens the namespace up.
type idClaims struct {
	set      bool
	raw      string
	ids      []string
	prefixes []string
}

// parseIDClaims reads the annotation's value: ids and prefixes ending in "*", separated by
// commas, spaces around them ignored; "*" alone claims every id.
func parseIDClaims(s string) (idClaims, error) {
	c := idClaims{set: true, raw: s}
	var errs []error
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		switch {
		case p == "*":
			c.prefixes = append(c.prefixes, "")
		case strings.HasSuffix(p, "*"):
			prefix := strings.TrimSuffix(p, "*")
			if err := policy.ValidDatasetID(prefix); err != nil {
				errs = append(errs, fmt.Errorf("prefix %q: %w", p, err))
				continue
			}
			c.prefixes = append(c.prefixes, prefix)
		default:
			if err := policy.ValidDatasetID(p); err != nil {
				errs = append(errs, err)
				continue
			}
			c.ids = append(c.ids, p)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return idClaims{set: true, raw: s}, fmt.Errorf("annotation %s=%q: %w (ids and prefixes ending in *, separated by commas)", contract.AnnotationDatasetIDs, s, err)
	}
	return c, nil
}

// allows reports whether a Dataset of the namespace may take id.
func (c idClaims) allows(id string) bool {
	if !c.set {
		return true
	}
	for _, x := range c.ids {
		if x == id {
			return true
		}
	}
	for _, p := range c.prefixes {
		if strings.HasPrefix(id, p) {
			return true
		}
	}
	return false
}

// check refuses an id the claims do not allow, naming them.
func (c idClaims) check(namespace, id string) error {
	if c.allows(id) {
		return nil
	}
	return &notClaimedError{fmt.Sprintf("namespace %s may hold only the dataset ids its annotation %s=%q lists, not %q: a cluster admin decides which ids a namespace may publish", namespace, contract.AnnotationDatasetIDs, c.raw, id)}
}

// Package grants answers "may this owner, on behalf of this caller, read this dataset, and where
// is it?". Both must be allowed. The answer comes from the policy file (local mode, and the
// broker's default), from Kubernetes RBAC through SubjectAccessReviews (a broker option), or from
// the broker over HTTPS (the sidecar in a cluster), all behind Source.
package grants

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/warden-dev/warden/pkg/policy"
)

var (
	// ErrUnavailable means the source could not answer (broker down, no policy loaded). The
	// sidecar answers 503; it never guesses.
	ErrUnavailable = errors.New("grants unavailable")
	// ErrUnknownOwner means the owner is not in the policy.
	ErrUnknownOwner = errors.New("owner is not in the Warden policy")
)

// Caller is who the app acts for: a user (with groups an identity provider vouched for), or the
// owner's own service account when the app acts for itself.
type Caller struct {
	User           string   `json:"user,omitempty"`
	Groups         []string `json:"groups,omitempty"`
	ServiceAccount string   `json:"service_account,omitempty"`
}

// UnmarshalJSON reads service_account and, as a legacy alias, serviceAccount: sidecars from
// before the wire was all snake_case send that, and the broker must keep answering them through
// a rolling upgrade. Encoding writes service_account only. Unknown fields are refused, as the
// strict decoders of request bodies would refuse them if this method did not stand between.
func (c *Caller) UnmarshalJSON(b []byte) error {
	var w struct {
		User           string   `json:"user"`
		Groups         []string `json:"groups"`
		ServiceAccount string   `json:"service_account"`
		Legacy         string   `json:"serviceAccount"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return fmt.Errorf("caller: %w", err)
	}
	if w.ServiceAccount != "" && w.Legacy != "" && w.ServiceAccount != w.Legacy {
		return errors.New("caller: service_account and its legacy spelling serviceAccount differ")
	}
	if w.ServiceAccount == "" {
		w.ServiceAccount = w.Legacy
	}
	*c = Caller{User: w.User, Groups: w.Groups, ServiceAccount: w.ServiceAccount}
	return nil
}

// Name is how the caller appears in answers and audit lines.
func (c Caller) Name() string {
	if c.ServiceAccount != "" {
		return c.ServiceAccount
	}
	return c.User
}

// Principal is the caller as the policy names it.
func (c Caller) Principal() policy.Principal {
	return policy.Principal{ServiceAccount: c.ServiceAccount, User: c.User, Groups: c.Groups}
}

// Access is one principal's part of a decision.
type Access struct {
	Name    string `json:"name"`
	CanRead bool   `json:"can_read"`
}

// Decision answers one dataset question. Snapshot locations are only filled in when both the
// owner and the caller may read, so a refused caller learns nothing about where data lives.
type Decision struct {
	DatasetID string            `json:"dataset_id"`
	Owner     Access            `json:"owner"`
	Caller    Access            `json:"caller"`
	Snapshot  string            `json:"snapshot,omitempty"`
	Snapshots map[string]string `json:"snapshots,omitempty"`
	// Reason explains a refusal for the audit log; it is not sent to app code.
	Reason string `json:"reason,omitempty"`
}

// Allowed is true when both may read.
func (d Decision) Allowed() bool { return d.Owner.CanRead && d.Caller.CanRead }

// Dataset is one entry of a listing.
type Dataset struct {
	ID       string `json:"id"`
	Snapshot string `json:"snapshot"`
}

// Source answers grant questions.
type Source interface {
	Check(ctx context.Context, owner string, caller Caller, dataset string) (Decision, error)
	List(ctx context.Context, owner string, caller Caller) ([]Dataset, error)
}

// Authorizer decides single reads; the Engine combines two of them with the policy's dataset
// table and environment rules.
type Authorizer interface {
	OwnerCanRead(ctx context.Context, pol policy.View, owner, dataset string) (bool, error)
	// CallerCanRead decides for a caller of owner's pod.
	CallerCanRead(ctx context.Context, pol policy.View, owner string, caller Caller, dataset string) (bool, error)
}

// PolicyAuthorizer reads the reader lists of the policy file.
type PolicyAuthorizer struct{}

func (PolicyAuthorizer) OwnerCanRead(_ context.Context, pol policy.View, owner, dataset string) (bool, error) {
	return pol.OwnerCanRead(dataset, owner), nil
}

func (PolicyAuthorizer) CallerCanRead(_ context.Context, pol policy.View, _ string, caller Caller, dataset string) (bool, error) {
	return pol.CanRead(dataset, caller.Principal()), nil
}

// Engine is a Source that answers from a policy and an Authorizer.
type Engine struct {
	Policy func() policy.View
	Authz  Authorizer
}

// NewPolicyEngine answers everything from the policy file.
func NewPolicyEngine(pol func() policy.View) *Engine {
	return &Engine{Policy: pol, Authz: PolicyAuthorizer{}}
}

func (e *Engine) policy(owner string) (policy.View, policy.Owner, error) {
	pol := e.Policy()
	if pol == nil {
		return nil, policy.Owner{}, ErrUnavailable
	}
	o, ok := pol.Owner(owner)
	if !ok {
		return nil, policy.Owner{}, ErrUnknownOwner
	}
	return pol, o, nil
}

// Check decides one dataset for owner and caller.
func (e *Engine) Check(ctx context.Context, owner string, caller Caller, id string) (Decision, error) {
	pol, o, err := e.policy(owner)
	if err != nil {
		return Decision{DatasetID: id, Owner: Access{Name: owner}, Caller: Access{Name: caller.Name()}}, err
	}
	return e.decide(ctx, pol, o, owner, caller, id)
}

// decide is Check with the policy in hand (one policy for a whole listing).
func (e *Engine) decide(ctx context.Context, pol policy.View, o policy.Owner, owner string, caller Caller, id string) (Decision, error) {
	var err error
	d := Decision{DatasetID: id, Owner: Access{Name: owner}, Caller: Access{Name: caller.Name()}}
	ds, ok := pol.Dataset(id)
	switch {
	case !ok:
		d.Reason = "unknown dataset"
		return d, nil
	case !ds.AllowsEnvironment(o.Environment):
		d.Reason = "dataset is not available to " + string(o.Environment) + " owners"
		// The caller's own right is still reported, as the seed's can-read answer does.
		d.Caller.CanRead, err = e.Authz.CallerCanRead(ctx, pol, owner, caller, id)
		return d, err
	}
	if d.Owner.CanRead, err = e.Authz.OwnerCanRead(ctx, pol, owner, id); err != nil {
		return d, err
	}
	if d.Caller.CanRead, err = e.Authz.CallerCanRead(ctx, pol, owner, caller, id); err != nil {
		return d, err
	}
	switch {
	case d.Allowed():
		d.Snapshot, d.Snapshots = ds.Snapshot, ds.Snapshots
	case !d.Owner.CanRead:
		d.Reason = "owner may not read the dataset"
	default:
		d.Reason = "caller may not read the dataset"
	}
	return d, nil
}

// List returns the datasets both may read, in policy order. With the policy's reader lists the
// candidates are the owner's readable datasets (an index lookup, no scan); another authorizer
// (RBAC) is asked about every dataset.
// ReadableBy lists the datasets a caller may read by itself, no pod involved (a person asking
// what they may do): the caller's part of a decision, by the same authorizer.
func (e *Engine) ReadableBy(ctx context.Context, caller Caller) ([]string, error) {
	pol := e.Policy()
	if pol == nil {
		return nil, ErrUnavailable
	}
	out := []string{}
	for _, id := range e.candidates(pol, caller.Principal()) {
		ok, err := e.Authz.CallerCanRead(ctx, pol, caller.ServiceAccount, caller, id)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, id)
		}
	}
	return out, nil
}

// candidates are the datasets worth deciding for who: with the policy's reader lists, those
// that list who (an index, no scan); an authorizer of its own (RBAC) may allow any.
func (e *Engine) candidates(pol policy.View, who policy.Principal) []string {
	if _, ok := e.Authz.(PolicyAuthorizer); ok {
		return pol.ReadableBy(who)
	}
	return pol.DatasetIDs()
}

func (e *Engine) List(ctx context.Context, owner string, caller Caller) ([]Dataset, error) {
	pol, o, err := e.policy(owner)
	if err != nil {
		return nil, err
	}
	out := []Dataset{}
	for _, id := range e.candidates(pol, policy.Principal{ServiceAccount: owner}) {
		d, err := e.decide(ctx, pol, o, owner, caller, id)
		if err != nil {
			return nil, err
		}
		if d.Allowed() {
			out = append(out, Dataset{ID: id, Snapshot: d.Snapshot})
		}
	}
	return out, nil
}

package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/warden-dev/warden/pkg/policy"
)

// AnnotationGSA is the annotation GKE reads on a Kubernetes service account.
const AnnotationGSA = "iam.gke.io/gcp-service-account"

// Errors of the binder.
var (
	ErrNoPolicy     = errors.New("no Warden policy is loaded")
	ErrNoProject    = errors.New("the policy has no gcp.project")
	ErrUnknownOrg   = errors.New("no such org")
	ErrNotMember    = errors.New("not a member of the org")
	ErrNoDefaultOrg = errors.New("no org given and none used before")
)

// Binding is the answer to a bind.
type Binding struct {
	Org               string `json:"org"`
	GCPServiceAccount string `json:"gcp_service_account"`
	// State is "pending" until IAM is expected to have propagated the change, then "bound".
	State     string    `json:"state"`
	WrittenAt time.Time `json:"written_at"`
	BoundAt   time.Time `json:"bound_at"` // when "pending" is expected to turn into "bound"
}

// Org is one entry of an owner's orgs.
type Org struct {
	Name              string `json:"name"`
	GCPServiceAccount string `json:"gcp_service_account"`
}

// Binder binds and resets owners' workload identities.
type Binder struct {
	Policies *Policies
	Records  *Records
	Kube     kubernetes.Interface
	Policy   func() policy.View
	// Propagation is how long an IAM change takes to be seen everywhere (2-7 minutes).
	Propagation time.Duration
	Log         *slog.Logger
	Now         func() time.Time

	locks sync.Map // owner -> *sync.Mutex: one change per owner at a time in this replica
}

func (b *Binder) now() time.Time {
	if b.Now != nil {
		return b.Now()
	}
	return time.Now()
}

func (b *Binder) log() *slog.Logger {
	if b.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return b.Log
}

func (b *Binder) lock(owner string) func() {
	m, _ := b.locks.LoadOrStore(owner, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// Orgs lists the orgs owner and caller both belong to (caller: the person the app acts for, or
// the owner itself).
func (b *Binder) Orgs(owner string, caller policy.Principal) ([]Org, error) {
	pol := b.Policy()
	if pol == nil {
		return nil, ErrNoPolicy
	}
	out := []Org{}
	for _, o := range policy.OrgsFor(pol, policy.Subjects(owner, caller)...) {
		out = append(out, Org{Name: o.Name, GCPServiceAccount: o.GCPServiceAccount})
	}
	return out, nil
}

// orgMember resolves org and checks the owner and the caller are both its members.
func orgMember(pol policy.View, org, owner string, caller policy.Principal) (policy.Org, error) {
	var o policy.Org
	for _, who := range policy.Subjects(owner, caller) {
		var ok bool
		if o, ok = pol.IsOrgMember(org, who); o.Name == "" {
			return o, fmt.Errorf("%w %q in the Warden policy", ErrUnknownOrg, org)
		} else if !ok {
			return o, fmt.Errorf("%w: %s is not a member of org %q", ErrNotMember, who, org)
		}
	}
	return o, nil
}

func (b *Binder) state(rec Record) Binding {
	ready := rec.Written.Add(b.Propagation)
	st := "bound"
	if b.now().Before(ready) {
		st = "pending"
	}
	return Binding{Org: rec.Org, GCPServiceAccount: rec.GSA, State: st, WrittenAt: rec.Written, BoundAt: ready}
}

// Bind lets owner's service account act as org's GCP service account, when the owner and the
// caller (the person the app acts for, or the owner itself) are both members of the org; org ""
// means the org the owner used last. The identity is the pod's: the caller check gates who may
// bind it, as the seed's "does the user belong to the org".
func (b *Binder) Bind(ctx context.Context, owner string, caller policy.Principal, org string) (Binding, error) {
	pol := b.Policy()
	switch {
	case pol == nil:
		return Binding{}, ErrNoPolicy
	case pol.Project() == "":
		return Binding{}, ErrNoProject
	}
	if org == "" {
		last, ok, err := b.Records.LastOrg(ctx, owner)
		if err != nil {
			return Binding{}, err
		}
		if !ok {
			return Binding{}, fmt.Errorf("%w: name an org (GET /v1/identity/orgs lists yours)", ErrNoDefaultOrg)
		}
		org = last
	}
	o, err := orgMember(pol, org, owner, caller)
	if err != nil {
		return Binding{}, err
	}
	defer b.lock(owner)()
	rec, err := b.bind(ctx, pol.Project(), owner, o)
	if err != nil {
		return Binding{}, err
	}
	return b.state(rec), nil
}

// bind points owner at org o's GCP service account; the caller holds owner's lock and has
// checked membership. The order of the steps is what keeps state whole: record, IAM binding,
// annotation, then removal of a previous account's binding. A failure part-way leaves the
// record, and the next Bind, Reset or the reconciler finishes or undoes the rest; the annotation
// never names an account the member is not bound on.
func (b *Binder) bind(ctx context.Context, project, owner string, o policy.Org) (Record, error) {
	ns, ksa, _ := strings.Cut(owner, "/")
	m := Member(project, ns, ksa)
	old, had, err := b.Records.Get(ctx, owner)
	if err != nil {
		return Record{}, err
	}
	rec := Record{Org: o.Name, GSA: o.GCPServiceAccount, Member: m, Written: b.now().UTC()}
	switch {
	case had && old.GSA == rec.GSA && old.Member == m:
		rec.Written, rec.Previous = old.Written, old.Previous
	case had:
		// Switching: the old account is cleaned up once the new one is in place.
		rec.Previous = old.GSA
		if old.Previous != "" && old.Previous != rec.GSA {
			if _, err := b.Policies.Ensure(ctx, old.Previous, old.Member, false); err != nil {
				return Record{}, err
			}
		}
	}
	if rec.Previous == rec.GSA {
		rec.Previous = ""
	}
	// One write: the record before IAM changes, and the org as the owner's default from now on.
	if err := b.Records.Save(ctx, owner, &rec, o.Name); err != nil {
		return Record{}, err
	}
	wrote, err := b.Policies.Ensure(ctx, rec.GSA, m, true)
	if err != nil {
		return Record{}, err
	}
	if wrote && rec.Written.Before(b.now().Add(-time.Second)) {
		// The binding had gone missing (removed outside Warden) and was written again now.
		rec.Written = b.now().UTC()
		if err := b.Records.Save(ctx, owner, &rec, ""); err != nil {
			return Record{}, err
		}
	}
	if err := b.annotate(ctx, ns, ksa, rec.GSA); err != nil {
		return Record{}, err
	}
	if rec.Previous != "" {
		if _, err := b.Policies.Ensure(ctx, rec.Previous, m, false); err != nil {
			// The new binding is in place; the old one is retried by the next call or the
			// reconciler, whose record still names it.
			b.log().Warn("removing the previous org's binding failed; will retry", "owner", owner, "gsa", rec.Previous, "error", err)
		} else {
			rec.Previous = ""
			if err := b.Records.Save(ctx, owner, &rec, ""); err != nil {
				return Record{}, err
			}
		}
	}
	b.log().Info("workload identity bound", "owner", owner, "org", o.Name, "gsa", rec.GSA, "iam_write", wrote)
	return rec, nil
}

// Reset removes owner's binding and annotation. It is idempotent.
func (b *Binder) Reset(ctx context.Context, owner string) error {
	defer b.lock(owner)()
	return b.reset(ctx, owner)
}

func (b *Binder) reset(ctx context.Context, owner string) error {
	ns, ksa, _ := strings.Cut(owner, "/")
	rec, had, err := b.Records.Get(ctx, owner)
	if err != nil {
		return err
	}
	// Annotation first: from here on GKE no longer hands the pod the GCP identity, whatever
	// the IAM calls below do.
	if err := b.annotate(ctx, ns, ksa, ""); err != nil {
		return err
	}
	if !had {
		return nil
	}
	for _, gsa := range []string{rec.GSA, rec.Previous} {
		if gsa == "" {
			continue
		}
		if _, err := b.Policies.Ensure(ctx, gsa, rec.Member, false); err != nil {
			return err
		}
	}
	if err := b.Records.Save(ctx, owner, nil, ""); err != nil {
		return err
	}
	b.log().Info("workload identity reset", "owner", owner, "gsa", rec.GSA)
	return nil
}

// annotate sets (or, with gsa "", removes) the KSA annotation with a merge patch, which leaves
// every other field of the service account alone.
func (b *Binder) annotate(ctx context.Context, ns, ksa, gsa string) error {
	var value any
	if gsa != "" {
		value = gsa
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]any{AnnotationGSA: value}}})
	if err != nil {
		return err
	}
	_, err = b.Kube.CoreV1().ServiceAccounts(ns).Patch(ctx, ksa, types.MergePatchType, patch, metav1.PatchOptions{})
	switch {
	case apierrors.IsNotFound(err) && gsa == "":
		return nil // nothing to clean on a service account that is gone
	case err != nil:
		return fmt.Errorf("%w: annotating service account %s/%s: %v", ErrClusterUnavailable, ns, ksa, err)
	}
	return nil
}

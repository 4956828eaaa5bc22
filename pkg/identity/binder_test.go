package identity

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/iam/apiv1/iampb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/warden-dev/warden/pkg/policy"
)

func TestBindWritesRecordBindingAndAnnotation(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	start := w.clock.Now()

	got, err := w.binder.Bind(ctx, ownerA, policy.Principal{ServiceAccount: ownerA}, "org1")
	require.NoError(t, err)
	assert.Equal(t, Binding{Org: "org1", GCPServiceAccount: gsa, State: "pending", WrittenAt: start, BoundAt: start.Add(propagate)}, got)
	assert.Equal(t, []string{memberOf(ownerA)}, w.members(gsa))
	assert.Equal(t, gsa, w.annotation(t, ownerA))
	sa, err := w.kube.CoreV1().ServiceAccounts("apps").Get(ctx, "svc-a", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "yes", sa.Annotations["kept"], "the merge patch leaves other annotations alone")
	rec, ok := w.record(t, ownerA)
	require.True(t, ok)
	assert.Equal(t, Record{Org: "org1", GSA: gsa, Member: memberOf(ownerA), Written: start}, rec)
	last, ok, err := w.binder.Records.LastOrg(ctx, ownerA)
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, "org1", last)

	// Binding again is idempotent: no IAM write, the same written time; bound once IAM has
	// had its propagation time.
	writes := w.writes()
	w.clock.Step(propagate)
	got, err = w.binder.Bind(ctx, ownerA, policy.Principal{ServiceAccount: ownerA}, "org1")
	require.NoError(t, err)
	assert.Equal(t, "bound", got.State)
	assert.Equal(t, start, got.WrittenAt)
	assert.Equal(t, writes, w.writes(), "a second bind writes nothing to IAM")
}

func TestBindRefusals(t *testing.T) {
	for _, tc := range []struct {
		name  string
		pol   func(t *testing.T) *policy.Policy
		owner string
		org   string
		want  error
	}{
		{"no policy loaded", func(*testing.T) *policy.Policy { return nil }, ownerA, "org1", ErrNoPolicy},
		{"no gcp project", func(t *testing.T) *policy.Policy {
			p := mustPolicy(t, testPolicy)
			p.GCP.Project = ""
			return p
		}, ownerA, "org1", ErrNoProject},
		{"unknown org", nil, ownerA, "org9", ErrUnknownOrg},
		{"not a member", nil, ownerB, "org2", ErrNotMember},
		{"no org given, none used before", nil, ownerA, "", ErrNoDefaultOrg},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			if tc.pol != nil {
				w.pol = tc.pol(t)
			}
			_, err := w.binder.Bind(context.Background(), tc.owner, policy.Principal{ServiceAccount: tc.owner}, tc.org)
			require.ErrorIs(t, err, tc.want)
			assert.Zero(t, w.writes(), "nothing written to IAM")
			assert.Empty(t, w.annotation(t, tc.owner))
			_, ok := w.record(t, tc.owner)
			assert.False(t, ok, "no record")
		})
	}
}

func TestBindEmptyOrgUsesTheLastOne(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	_, err := w.binder.Bind(ctx, ownerA, policy.Principal{ServiceAccount: ownerA}, "org2")
	require.NoError(t, err)
	require.NoError(t, w.binder.Reset(ctx, ownerA))
	got, err := w.binder.Bind(ctx, ownerA, policy.Principal{ServiceAccount: ownerA}, "")
	require.NoError(t, err)
	assert.Equal(t, "org2", got.Org, "the org used last survives a reset")
	assert.Equal(t, gsa2, w.annotation(t, ownerA))
}

func TestBindSwitchesOrgs(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	_, err := w.binder.Bind(ctx, ownerA, policy.Principal{ServiceAccount: ownerA}, "org1")
	require.NoError(t, err)
	_, err = w.binder.Bind(ctx, ownerB, policy.Principal{ServiceAccount: ownerB}, "org1")
	require.NoError(t, err)

	got, err := w.binder.Bind(ctx, ownerA, policy.Principal{ServiceAccount: ownerA}, "org2")
	require.NoError(t, err)
	assert.Equal(t, gsa2, got.GCPServiceAccount)
	assert.Equal(t, "pending", got.State)
	assert.Equal(t, gsa2, w.annotation(t, ownerA))
	assert.Equal(t, []string{memberOf(ownerA)}, w.members(gsa2))
	assert.Equal(t, []string{memberOf(ownerB)}, w.members(gsa), "the old account keeps its other members")
	rec, _ := w.record(t, ownerA)
	assert.Empty(t, rec.Previous, "nothing left to clean up")
}

// A switch whose clean-up of the old account fails still succeeds; the record keeps the old
// account until a later call removes the member from it.
func TestBindSwitchCleanUpRetried(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	_, err := w.binder.Bind(ctx, ownerA, policy.Principal{ServiceAccount: ownerA}, "org1")
	require.NoError(t, err)

	w.flaky.setDown(gsa, true)
	_, err = w.binder.Bind(ctx, ownerA, policy.Principal{ServiceAccount: ownerA}, "org2")
	require.NoError(t, err, "the new binding is in place")
	assert.Equal(t, gsa2, w.annotation(t, ownerA))
	rec, _ := w.record(t, ownerA)
	assert.Equal(t, gsa, rec.Previous)
	assert.Contains(t, w.members(gsa), memberOf(ownerA), "still there while IAM is down")

	t.Run("the next bind finishes it", func(t *testing.T) {
		w.flaky.setDown(gsa, false)
		_, err := w.binder.Bind(ctx, ownerA, policy.Principal{ServiceAccount: ownerA}, "org2")
		require.NoError(t, err)
		assert.Empty(t, w.members(gsa))
		rec, _ := w.record(t, ownerA)
		assert.Empty(t, rec.Previous)
	})
}

// Switching again while an earlier switch's clean-up is still pending removes the member from
// both old accounts.
func TestBindSwitchWithPendingCleanUp(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	_, err := w.binder.Bind(ctx, ownerA, policy.Principal{ServiceAccount: ownerA}, "org1")
	require.NoError(t, err)
	w.flaky.setDown(gsa, true)
	_, err = w.binder.Bind(ctx, ownerA, policy.Principal{ServiceAccount: ownerA}, "org2")
	require.NoError(t, err)
	w.flaky.setDown(gsa, false)

	_, err = w.binder.Bind(ctx, ownerA, policy.Principal{ServiceAccount: ownerA}, "org3")
	require.NoError(t, err)
	assert.Empty(t, w.members(gsa))
	assert.Empty(t, w.members(gsa2))
	assert.Equal(t, []string{memberOf(ownerA)}, w.members(gsa3))
	assert.Equal(t, gsa3, w.annotation(t, ownerA))
}

func TestBindIAMDownLeavesARecordAndNoAnnotation(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.iam.SetDown(true)
	_, err := w.binder.Bind(ctx, ownerA, policy.Principal{ServiceAccount: ownerA}, "org1")
	require.ErrorIs(t, err, ErrIAMUnavailable)
	assert.Empty(t, w.annotation(t, ownerA), "the annotation never names an account the member is not bound on")
	rec, ok := w.record(t, ownerA)
	require.True(t, ok, "the record is written before IAM, so the reconciler can clean up")
	assert.Equal(t, gsa, rec.GSA)

	w.iam.SetDown(false)
	require.NoError(t, w.binder.Reset(ctx, ownerA))
	_, ok = w.record(t, ownerA)
	assert.False(t, ok)
}

func TestBindAnnotationFailure(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	patch := failKube(w.kube, "patch", "serviceaccounts")
	_, err := w.binder.Bind(ctx, ownerA, policy.Principal{ServiceAccount: ownerA}, "org1")
	require.ErrorIs(t, err, ErrClusterUnavailable)
	_, ok := w.record(t, ownerA)
	assert.True(t, ok, "the record names the binding to undo")

	patch.set(false)
	require.NoError(t, w.binder.Reset(ctx, ownerA))
	assert.Empty(t, w.members(gsa), "reset undoes the half bind")
}

// Half state (the IAM member removed outside Warden) is repaired by the next bind, which also
// starts the propagation wait again.
func TestBindRepairsARemovedBinding(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	_, err := w.binder.Bind(ctx, ownerA, policy.Principal{ServiceAccount: ownerA}, "org1")
	require.NoError(t, err)
	w.clock.Step(time.Hour)
	w.iam.Replace(gsa, &iampb.Policy{})

	got, err := w.binder.Bind(ctx, ownerA, policy.Principal{ServiceAccount: ownerA}, "org1")
	require.NoError(t, err)
	assert.Equal(t, []string{memberOf(ownerA)}, w.members(gsa))
	assert.Equal(t, "pending", got.State, "a rewritten binding needs to propagate again")
	assert.Equal(t, w.clock.Now(), got.WrittenAt)
	rec, _ := w.record(t, ownerA)
	assert.Equal(t, w.clock.Now(), rec.Written)
}

func TestReset(t *testing.T) {
	ctx := context.Background()
	t.Run("removes the annotation, the binding and the record, and is idempotent", func(t *testing.T) {
		w := newWorld(t)
		_, err := w.binder.Bind(ctx, ownerA, policy.Principal{ServiceAccount: ownerA}, "org1")
		require.NoError(t, err)
		require.NoError(t, w.binder.Reset(ctx, ownerA))
		assert.Empty(t, w.annotation(t, ownerA))
		assert.Empty(t, w.members(gsa))
		_, ok := w.record(t, ownerA)
		assert.False(t, ok)
		writes := w.writes()
		require.NoError(t, w.binder.Reset(ctx, ownerA))
		assert.Equal(t, writes, w.writes())
	})
	t.Run("also cleans a pending previous account", func(t *testing.T) {
		w := newWorld(t)
		_, err := w.binder.Bind(ctx, ownerA, policy.Principal{ServiceAccount: ownerA}, "org1")
		require.NoError(t, err)
		w.flaky.setDown(gsa, true)
		_, err = w.binder.Bind(ctx, ownerA, policy.Principal{ServiceAccount: ownerA}, "org2")
		require.NoError(t, err)
		w.flaky.setDown(gsa, false)
		require.NoError(t, w.binder.Reset(ctx, ownerA))
		assert.Empty(t, w.members(gsa))
		assert.Empty(t, w.members(gsa2))
	})
	t.Run("IAM down: the annotation goes first, the record stays for a retry", func(t *testing.T) {
		w := newWorld(t)
		_, err := w.binder.Bind(ctx, ownerA, policy.Principal{ServiceAccount: ownerA}, "org1")
		require.NoError(t, err)
		w.iam.SetDown(true)
		require.ErrorIs(t, w.binder.Reset(ctx, ownerA), ErrIAMUnavailable)
		assert.Empty(t, w.annotation(t, ownerA), "GKE stops handing out the identity at once")
		_, ok := w.record(t, ownerA)
		assert.True(t, ok)
	})
	t.Run("a service account that is gone", func(t *testing.T) {
		w := newWorld(t)
		_, err := w.binder.Bind(ctx, ownerA, policy.Principal{ServiceAccount: ownerA}, "org1")
		require.NoError(t, err)
		require.NoError(t, w.kube.CoreV1().ServiceAccounts("apps").Delete(ctx, "svc-a", metav1.DeleteOptions{}))
		require.NoError(t, w.binder.Reset(ctx, ownerA))
		assert.Empty(t, w.members(gsa))
	})
	t.Run("the API server failing", func(t *testing.T) {
		w := newWorld(t)
		failKube(w.kube, "patch", "serviceaccounts")
		assert.ErrorIs(t, w.binder.Reset(ctx, ownerA), ErrClusterUnavailable)
	})
}

func TestOrgs(t *testing.T) {
	w := newWorld(t)
	orgs, err := w.binder.Orgs(ownerA, policy.Principal{ServiceAccount: ownerA})
	require.NoError(t, err)
	assert.Equal(t, []Org{{"org1", gsa}, {"org2", gsa2}, {"org3", gsa3}}, orgs)
	orgs, err = w.binder.Orgs("apps/svc-c", policy.Principal{ServiceAccount: "apps/svc-c"})
	require.NoError(t, err)
	assert.NotNil(t, orgs, "an empty list, not null, in JSON")
	assert.Empty(t, orgs)
	orgs, err = w.binder.Orgs(ownerA, policy.Principal{User: "u1"})
	require.NoError(t, err)
	assert.Equal(t, []Org{{"org1", gsa}, {"org2", gsa2}}, orgs, "the orgs owner and caller share: org1 directly, org2 through ds-team")
	orgs, err = w.binder.Orgs(ownerA, policy.Principal{User: "u2", Groups: []string{"ds-team"}})
	require.NoError(t, err)
	assert.Equal(t, []Org{{"org2", gsa2}}, orgs, "a group the caller's token vouches for")
	w.pol = nil
	_, err = w.binder.Orgs(ownerA, policy.Principal{ServiceAccount: ownerA})
	assert.ErrorIs(t, err, ErrNoPolicy)
}

// TestBindCaller: the person the app acts for must be an org member too, directly or through a
// group; a member caller never lends membership to an owner that lacks it.
func TestBindCaller(t *testing.T) {
	for _, tc := range []struct {
		name   string
		owner  string
		caller policy.Principal
		org    string
		want   error
	}{
		{"member directly", ownerA, policy.Principal{User: "u1"}, "org1", nil},
		{"member through a policy group", ownerA, policy.Principal{User: "u1"}, "org2", nil},
		{"member through a vouched group", ownerA, policy.Principal{User: "u9", Groups: []string{"ds-team"}}, "org2", nil},
		{"not a member", ownerA, policy.Principal{User: "u2"}, "org1", ErrNotMember},
		{"member of another org only", ownerA, policy.Principal{User: "u1"}, "org3", ErrNotMember},
		{"a member caller, an owner outside the org", ownerB, policy.Principal{User: "u1"}, "org2", ErrNotMember},
		{"a user named like a member service account", ownerA, policy.Principal{User: "apps/svc-a"}, "org3", ErrNotMember},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			b, err := w.binder.Bind(context.Background(), tc.owner, tc.caller, tc.org)
			if tc.want != nil {
				require.ErrorIs(t, err, tc.want)
				assert.Zero(t, w.writes(), "nothing written to IAM")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.org, b.Org)
		})
	}
}

// Concurrent binds and resets of one owner are serialized: whatever order they land in, the
// annotation, the record and IAM agree at the end.
func TestConcurrentChangesOfOneOwnerStayConsistent(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 30)
	for i := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			switch i % 3 {
			case 0:
				_, err = w.binder.Bind(ctx, ownerA, policy.Principal{ServiceAccount: ownerA}, "org1")
			case 1:
				_, err = w.binder.Bind(ctx, ownerA, policy.Principal{ServiceAccount: ownerA}, "org2")
			default:
				err = w.binder.Reset(ctx, ownerA)
			}
			if err != nil {
				errs <- fmt.Errorf("change %d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	rec, bound := w.record(t, ownerA)
	bindings := map[string]bool{}
	for _, g := range []string{gsa, gsa2} {
		if len(w.members(g)) > 0 {
			bindings[g] = true
		}
	}
	if !bound {
		assert.Empty(t, w.annotation(t, ownerA))
		assert.Empty(t, bindings)
		return
	}
	assert.Equal(t, rec.GSA, w.annotation(t, ownerA))
	assert.Equal(t, map[string]bool{rec.GSA: true}, bindings)
}

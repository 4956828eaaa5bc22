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
	"google.golang.org/genproto/googleapis/type/expr"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/warden-dev/warden/internal/testing/fakeiam"
)

const gsa = "aes1-svc@my-project.iam.gserviceaccount.com"

// newPolicies dials the fake with the real IAM admin client.
func newPolicies(t *testing.T) (*fakeiam.Server, *Policies) {
	t.Helper()
	fake, err := fakeiam.Start(gsa, "aes2-svc@my-project.iam.gserviceaccount.com")
	require.NoError(t, err)
	t.Cleanup(fake.Stop)
	c, err := NewIAMClient(context.Background(), fake.Addr, true)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return fake, &Policies{IAM: c, Backoff: wait.Backoff{Duration: time.Millisecond, Factor: 1.5, Jitter: 0.5, Steps: 20}}
}

func member(ksa string) string { return Member("my-project", "apps", ksa) }

func TestEnsureRoundTrip(t *testing.T) {
	fake, p := newPolicies(t)
	ctx := context.Background()
	wrote, err := p.Ensure(ctx, gsa, member("a"), true)
	require.NoError(t, err)
	assert.True(t, wrote)
	assert.Equal(t, []string{"serviceAccount:my-project.svc.id.goog[apps/a]"}, fake.Members(gsa, Role))
	assert.Equal(t, 1, fake.Writes(gsa))

	wrote, err = p.Ensure(ctx, gsa, member("a"), true)
	require.NoError(t, err)
	assert.False(t, wrote, "a second bind writes nothing")
	assert.Equal(t, 1, fake.Writes(gsa))

	_, err = p.Ensure(ctx, gsa, member("b"), true)
	require.NoError(t, err)
	_, err = p.Ensure(ctx, gsa, member("a"), false)
	require.NoError(t, err)
	assert.Equal(t, []string{member("b")}, fake.Members(gsa, Role), "other members stay")
	_, err = p.Ensure(ctx, gsa, member("b"), false)
	require.NoError(t, err)
	assert.Empty(t, fake.Policy(gsa).Bindings, "the binding goes with its last member")
	wrote, err = p.Ensure(ctx, gsa, member("b"), false)
	require.NoError(t, err)
	assert.False(t, wrote, "unbinding twice writes nothing")
}

func TestEnsureKeepsConditionalBindingsAndOtherRoles(t *testing.T) {
	fake, p := newPolicies(t)
	cond := &iampb.Binding{Role: Role, Members: []string{member("conditional")}, Condition: &expr.Expr{Title: "until 2030", Expression: `request.time < timestamp("2030-01-01T00:00:00Z")`}}
	other := &iampb.Binding{Role: "roles/iam.serviceAccountTokenCreator", Members: []string{"user:ops@example.com"}}
	fake.Replace(gsa, &iampb.Policy{Version: 3, Bindings: []*iampb.Binding{cond, other}})
	ctx := context.Background()
	_, err := p.Ensure(ctx, gsa, member("a"), true)
	require.NoError(t, err)
	_, err = p.Ensure(ctx, gsa, member("a"), false)
	require.NoError(t, err)
	pol := fake.Policy(gsa)
	require.Len(t, pol.Bindings, 2)
	assert.Equal(t, cond.Members, pol.Bindings[0].Members)
	assert.Equal(t, cond.Condition.Expression, pol.Bindings[0].Condition.Expression)
	assert.Equal(t, other.Members, pol.Bindings[1].Members)
	assert.EqualValues(t, 3, pol.Version)
}

func TestEnsureRetriesEtagConflictsAndKeepsTheOtherWriter(t *testing.T) {
	fake, p := newPolicies(t)
	var once sync.Once
	fake.BeforeSet = func(email string) {
		once.Do(func() {
			// Someone else adds a member between our read and our write.
			pol := fake.Policy(email)
			pol.Bindings = append(pol.Bindings, &iampb.Binding{Role: Role, Members: []string{"user:someone@example.com"}})
			fake.Replace(email, pol)
		})
	}
	_, err := p.Ensure(context.Background(), gsa, member("a"), true)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"user:someone@example.com", member("a")}, fake.Members(gsa, Role))
}

func TestConcurrentBindsAllLand(t *testing.T) {
	fake, p := newPolicies(t)
	p.Backoff = DefaultBackoff // as in production
	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = p.Ensure(context.Background(), gsa, member(fmt.Sprintf("ksa-%d", i)), true)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err, "bind %d", i)
	}
	assert.Len(t, fake.Members(gsa, Role), 20)
	assert.Equal(t, 20, fake.Writes(gsa), "one write per bind that landed")
}

func TestEnsureErrors(t *testing.T) {
	fake, p := newPolicies(t)
	ctx := context.Background()
	_, err := p.Ensure(ctx, "nobody@my-project.iam.gserviceaccount.com", member("a"), true)
	assert.ErrorIs(t, err, ErrIAMDenied)
	fake.SetDown(true)
	_, err = p.Ensure(ctx, gsa, member("a"), true)
	assert.ErrorIs(t, err, ErrIAMUnavailable)
	fake.SetDown(false)
	// A writer that always wins exhausts the retries: unavailable, not a silent overwrite.
	fake.BeforeSet = func(email string) { fake.Replace(email, fake.Policy(email)) }
	_, err = p.Ensure(ctx, gsa, member("a"), true)
	assert.ErrorIs(t, err, ErrIAMUnavailable)
	assert.Empty(t, fake.Members(gsa, Role))
}

package grants

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warden-dev/warden/pkg/policy"
)

const testPolicy = `
owners:
  - {serviceAccount: apps/prod, environment: prod}
  - {serviceAccount: apps/dev, environment: dev}
groups:
  analysts: [ann]
datasets:
  - {id: p1, snapshot: prod/p1, environments: [prod], readers: [serviceAccount:apps/prod, serviceAccount:apps/dev, group:analysts], snapshots: {old: prod/p1-old}}
  - {id: open, snapshot: open, readers: [serviceAccount:apps/dev, user:bob]}
`

func engine(t *testing.T) *Engine {
	p, err := policy.Parse([]byte(testPolicy))
	require.NoError(t, err)
	return NewPolicyEngine(func() policy.View { return p })
}

func TestEngine(t *testing.T) {
	e := engine(t)
	ctx := context.Background()
	d, err := e.Check(ctx, "apps/prod", Caller{User: "ann"}, "p1")
	require.NoError(t, err)
	assert.True(t, d.Allowed())
	assert.Equal(t, "prod/p1", d.Snapshot)
	assert.Equal(t, map[string]string{"old": "prod/p1-old"}, d.Snapshots)

	d, err = e.Check(ctx, "apps/dev", Caller{User: "ann"}, "p1")
	require.NoError(t, err)
	assert.False(t, d.Owner.CanRead, "listed, but a dev owner never gets a prod-only dataset")
	assert.True(t, d.Caller.CanRead)
	assert.Contains(t, d.Reason, "not available to dev")
	assert.Empty(t, d.Snapshot)

	d, err = e.Check(ctx, "apps/prod", Caller{User: "bob"}, "open")
	require.NoError(t, err)
	assert.False(t, d.Allowed())
	assert.Equal(t, "owner may not read the dataset", d.Reason)

	d, err = e.Check(ctx, "apps/prod", Caller{User: "ann"}, "nope")
	require.NoError(t, err)
	assert.False(t, d.Allowed())
	assert.Equal(t, "unknown dataset", d.Reason)

	_, err = e.Check(ctx, "apps/stranger", Caller{User: "ann"}, "p1")
	assert.ErrorIs(t, err, ErrUnknownOwner)
	_, err = (&Engine{Policy: func() policy.View { return nil }, Authz: PolicyAuthorizer{}}).Check(ctx, "apps/prod", Caller{}, "p1")
	assert.ErrorIs(t, err, ErrUnavailable)

	l, err := e.List(ctx, "apps/dev", Caller{ServiceAccount: "apps/dev"})
	require.NoError(t, err)
	assert.Equal(t, []Dataset{{ID: "open", Snapshot: "open"}}, l)
	l, err = e.List(ctx, "apps/dev", Caller{User: "nobody"})
	require.NoError(t, err)
	assert.Empty(t, l)
	assert.NotNil(t, l, "an empty listing is [] in JSON, not null")
}

// flaky is a Source that fails on demand, counting calls.
type flaky struct {
	Source
	down  bool
	calls int
}

func (f *flaky) Check(ctx context.Context, o string, c Caller, d string) (Decision, error) {
	f.calls++
	if f.down {
		return Decision{}, fmt.Errorf("%w: broker down", ErrUnavailable)
	}
	return f.Source.Check(ctx, o, c, d)
}

func (f *flaky) List(ctx context.Context, o string, c Caller) ([]Dataset, error) {
	f.calls++
	if f.down {
		return nil, fmt.Errorf("%w: broker down", ErrUnavailable)
	}
	return f.Source.List(ctx, o, c)
}

func TestCached(t *testing.T) {
	now := time.Unix(1000, 0)
	src := &flaky{Source: engine(t)}
	c := &Cached{Source: src, TTL: 5 * time.Second, StaleFor: 60 * time.Second, Now: func() time.Time { return now }}
	ctx := context.Background()
	ann := Caller{User: "ann"}

	d, err := c.Check(ctx, "apps/prod", ann, "p1")
	require.NoError(t, err)
	require.True(t, d.Allowed())
	_, _ = c.Check(ctx, "apps/prod", ann, "p1")
	assert.Equal(t, 1, src.calls, "second answer from the cache")

	now = now.Add(6 * time.Second)
	_, _ = c.Check(ctx, "apps/prod", ann, "p1")
	assert.Equal(t, 2, src.calls, "expired entries are asked again")

	src.down = true
	now = now.Add(30 * time.Second)
	d, err = c.Check(ctx, "apps/prod", ann, "p1")
	require.NoError(t, err, "an allowed answer survives a short outage")
	assert.True(t, d.Allowed())
	now = now.Add(60 * time.Second)
	_, err = c.Check(ctx, "apps/prod", ann, "p1")
	assert.ErrorIs(t, err, ErrUnavailable, "but not a long one")

	// A refusal is never served stale, and other callers never see another's entry.
	src.down = false
	_, _ = c.Check(ctx, "apps/prod", Caller{User: "bob"}, "p1")
	src.down = true
	now = now.Add(10 * time.Second)
	_, err = c.Check(ctx, "apps/prod", Caller{User: "bob"}, "p1")
	assert.ErrorIs(t, err, ErrUnavailable)
	_, err = c.Check(ctx, "apps/prod", Caller{User: "ann", Groups: []string{"x"}}, "p1")
	assert.ErrorIs(t, err, ErrUnavailable, "groups are part of the key")

	src.down = false
	l, err := c.List(ctx, "apps/dev", Caller{ServiceAccount: "apps/dev"})
	require.NoError(t, err)
	src.down = true
	now = now.Add(10 * time.Second)
	l2, err := c.List(ctx, "apps/dev", Caller{ServiceAccount: "apps/dev"})
	require.NoError(t, err)
	assert.Equal(t, l, l2)
}

package clusterpolicy

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wardenv1 "github.com/warden-dev/warden/pkg/apis/warden/v1alpha1"
)

// The status says what the view does: every reason, decided by the view's own functions.
func TestStatusReasons(t *testing.T) {
	older := dataset("team-a", "sales", 10, "s", "user:ann")
	younger := dataset("team-b", "sales", 1, "s", "user:ann")
	bad := dataset("team-a", "bad", 1, "s")
	bad.Spec.Environments = []wardenv1.Environment{"staging"}
	noProjectOrg := &wardenv1.Org{ObjectMeta: metav1.ObjectMeta{Name: "o"}, Spec: wardenv1.OrgSpec{GCPServiceAccount: "o@p.iam.gserviceaccount.com"}}
	objs := []client.Object{ns("team-a", "a"), ns("team-b", "b"), ns("bare", ""),
		older, younger, bad, dataset("bare", "orphan", 1, "s"), dataset("team-a", "file-ds", 1, "s"),
		owner("apps/file-owner", "prod"), owner("apps/new", "prod"),
		&wardenv1.Group{ObjectMeta: metav1.ObjectMeta{Name: "file-group"}, Spec: wardenv1.GroupSpec{Users: []string{"x"}}},
		noProjectOrg,
	}
	st := &Statuses{Source: newSource(t, true, objs...)}
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		decide func(context.Context, client.Object) (string, string)
		obj    client.Object
		reason string
	}{
		{"oldest of its id", st.dataset, older, wardenv1.ReasonAccepted},
		{"younger of its id", st.dataset, younger, wardenv1.ReasonConflict},
		{"unknown environment", st.dataset, bad, wardenv1.ReasonInvalid},
		{"namespace without root", st.dataset, dataset("bare", "orphan", 1, "s"), wardenv1.ReasonNoSnapshotRoot},
		{"the file's dataset id", st.dataset, dataset("team-a", "file-ds", 1, "s"), wardenv1.ReasonConflict},
		{"the file's owner", st.owner, owner("apps/file-owner", "prod"), wardenv1.ReasonConflict},
		{"a new owner", st.owner, owner("apps/new", "prod"), wardenv1.ReasonAccepted},
		{"the file's group", st.group, objs[10], wardenv1.ReasonConflict},
		{"an org", st.org, noProjectOrg, wardenv1.ReasonAccepted},
	} {
		reason, msg := tc.decide(ctx, tc.obj)
		assert.Equal(t, tc.reason, reason, "%s: %s", tc.name, msg)
	}
	// Without a file and without --gcp-project, an org cannot be used.
	st = &Statuses{Source: newSource(t, false, noProjectOrg)}
	st.Source.Project = ""
	reason, msg := st.org(ctx, noProjectOrg)
	assert.Equal(t, wardenv1.ReasonInvalid, reason)
	assert.Contains(t, msg, "--gcp-project")
}

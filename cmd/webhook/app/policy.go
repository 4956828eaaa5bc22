package app

import (
	"context"
	"fmt"
	"runtime/debug"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/discovery"

	wardenv1 "github.com/warden-dev/warden/pkg/apis/warden/v1alpha1"
	"github.com/warden-dev/warden/pkg/clusterpolicy"
	"github.com/warden-dev/warden/pkg/health"
	"github.com/warden-dev/warden/pkg/policy"
)

// servesPolicyObjects says, before anything fails on a missing REST mapping, which of Warden's
// kinds the API server does not serve and how to fix it.
func servesPolicyObjects(d discovery.DiscoveryInterface) error {
	gv := wardenv1.GroupVersion.String()
	served := map[string]bool{}
	list, err := d.ServerResourcesForGroupVersion(gv)
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("webhook: asking the API server for %s: %w", gv, err)
	}
	if list != nil {
		for _, r := range list.APIResources {
			served[r.Name] = true
		}
	}
	var missing []string
	for _, r := range clusterpolicy.Resources() {
		if !served[r] {
			missing = append(missing, r+"."+wardenv1.GroupVersion.Group)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("webhook: the policy objects are on (--policy-objects) but the API server serves no %s %s: install Warden's CRDs (kubectl apply -f manifests/base/crds/, or kubectl apply -k manifests/; the Helm chart installs them), or run with --policy-objects=false to use the policy file alone",
			gv, strings.Join(missing, ", "))
	}
	return nil
}

// policySource yields the policy in force (nil when there is none yet).
type policySource interface {
	View() policy.View
}

// setupPolicy decides where the policy comes from: the objects in the cluster merged with the
// file (the default), or the file alone (NoPolicyObjects).
func (s *Server) setupPolicy() error {
	if s.opts.NoPolicyObjects {
		s.source = s.policy
		return nil
	}
	var file func() *policy.Policy
	if s.policy != nil {
		file = s.policy.Current
	}
	src := &clusterpolicy.Source{Reader: s.mgr.GetCache(), File: file, Project: s.opts.GCPProject, Synced: s.policySynced.Load}
	s.source = src
	if err := clusterpolicy.Register(context.Background(), s.mgr.GetFieldIndexer()); err != nil {
		return fmt.Errorf("webhook: policy object indexes: %w", err)
	}
	st := &clusterpolicy.Statuses{Source: src, Client: s.mgr.GetClient(), Log: s.log.With("component", "policy-status")}
	if s.policy != nil {
		st.FileChanged = s.policy.Changed()
	}
	if err := st.SetupWithManager(s.mgr); err != nil {
		return fmt.Errorf("webhook: policy object status: %w", err)
	}
	// Every replica reads the objects: start their informers and say when they have synced.
	// Until then there is no policy, and admission fails closed.
	return s.mgr.Add(everyReplica(func(ctx context.Context) error {
		if err := src.Attach(ctx, s.mgr.GetCache()); err != nil {
			return fmt.Errorf("webhook: %w", err)
		}
		if s.mgr.GetCache().WaitForCacheSync(ctx) && src.WaitIndexed(ctx) {
			releaseSyncMemory()
			s.policySynced.Store(true)
			s.log.Info("policy objects synced")
		}
		return nil
	}))
}

// releaseSyncMemory returns the initial sync's garbage to the OS once. Streaming tens of
// thousands of objects leaves about as much garbage as the cache keeps (each object decoded
// whole, then reduced by the transform; the stream's temporary store), and the Go runtime gives
// freed memory back lazily, over minutes: until then the pod's resident memory, which its memory
// limit counts, stays at the sync's peak. One forced collection, once, just before the webhook
// reports ready, costs a few hundred milliseconds of CPU; from then on the runtime's usual
// pacing (and GOMEMLIMIT, which the deployment derives from the limit) applies.
func releaseSyncMemory() { debug.FreeOSMemory() }

// policyCheck reports the policy objects' sync for /readyz.
func (s *Server) policyCheck() (health.State, string) {
	if s.opts.NoPolicyObjects {
		return health.OK, "objects off (--policy-objects=false)"
	}
	if !s.policySynced.Load() {
		return health.Failing, "policy objects not synced yet"
	}
	return health.OK, "synced"
}

// everyReplica is a runnable that does not wait for leader election.
type everyReplica func(ctx context.Context) error

func (f everyReplica) Start(ctx context.Context) error { return f(ctx) }
func (everyReplica) NeedLeaderElection() bool          { return false }

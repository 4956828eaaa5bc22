package e2e

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	webhookapp "github.com/warden-dev/warden/cmd/webhook/app"
	"github.com/warden-dev/warden/internal/testing/testenv"
	"github.com/warden-dev/warden/pkg/admission/mutate"
)

// The webhook against a real API server that lacks what it needs: with the policy objects on,
// Warden's CRDs, then an older set of them (no spaces, no storage policies); with pod-certificate
// identity, the PodCertificateRequest API. It refuses to start, naming what is missing and the
// way out, instead of failing on a REST mapping while it builds its cache.
func TestWebhookWithoutAPIs(t *testing.T) {
	assets, err := testenv.Assets()
	require.NoError(t, err)
	bare := &envtest.Environment{BinaryAssetsDirectory: assets}
	bare.ControlPlane.GetAPIServer().Configure().Set("runtime-config", "certificates.k8s.io/v1/podcertificaterequests=false")
	cfg, err := bare.Start()
	require.NoError(t, err)
	t.Cleanup(func() { _ = bare.Stop() })

	build := func(noObjects bool) error {
		_, err := webhookapp.New(webhookapp.Options{RestConfig: cfg, PolicyFile: policyFile, NoPolicyObjects: noObjects,
			Namespace: "warden-system", Mutate: mutate.DefaultConfig(),
			CertDir: t.TempDir(), HealthAddr: "127.0.0.1:0", BrokerAddr: "127.0.0.1:0", Log: webhookLog})
		return err
	}
	err = build(false)
	if assert.Error(t, err) {
		for _, want := range []string{"owners.warden.dev", "datasets.warden.dev", "storagepolicies.warden.dev",
			"kubectl apply -f manifests/base/crds/", "--policy-objects=false"} {
			assert.Contains(t, err.Error(), want)
		}
	}

	// An older chart's CRDs: every kind but the storage ones.
	older := t.TempDir()
	for _, kind := range []string{"owners", "datasets", "groups", "orgs"} {
		b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "manifests/base/crds", "warden.dev_"+kind+".yaml"))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(older, kind+".yaml"), b, 0o644))
	}
	_, err = envtest.InstallCRDs(cfg, envtest.CRDInstallOptions{Paths: []string{older}, ErrorIfPathMissing: true})
	require.NoError(t, err)
	err = build(false)
	if assert.Error(t, err) {
		assert.Contains(t, err.Error(), "spaces.warden.dev, storagepolicies.warden.dev")
		assert.NotContains(t, err.Error(), "owners.warden.dev")
	}

	// The file alone, sidecars identified by pod certificates, on a cluster without them.
	err = build(true)
	if assert.Error(t, err) {
		for _, want := range []string{"podcertificaterequests", "--sidecar-identity=token"} {
			assert.Contains(t, err.Error(), want)
		}
	}
}

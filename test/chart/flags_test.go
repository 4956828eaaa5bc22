package chart

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every flag the chart gives the webhook exists and is valid: the real cmd/webhook parses and
// validates the Deployment's arguments, with every value that adds one set. It stops at the
// Kubernetes configuration, after the flags (no cluster is given to it).
func TestChartArgsAreWebhookFlags(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "warden-webhook")
	build := exec.Command("go", "build", "-o", bin, "./cmd/webhook")
	build.Dir = repoRoot()
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build ./cmd/webhook: %s", out)

	for _, sets := range [][]string{
		nil,
		{"policy.source=none"},
		{
			"policy.source=configMap", "policy.configMap.name=platform-policy", "policy.objects=false",
			"broker.grants=rbac", "broker.url=https://warden.example:8443", "vault.address=https://vault.vault.svc:8200",
			"gcp.identity=true", "gcp.project=my-project", "gcp.adminGroup=warden-admins",
			"sidecar.image.pullPolicy=IfNotPresent", "sidecar.native=false",
			"sidecar.resources.requests.cpu=20m", "sidecar.resources.requests.memory=48Mi",
			"sidecar.resources.limits.cpu=500m", "sidecar.resources.limits.memory=256Mi",
			"exemptNamespaces={monitoring,istio-system}", "volumes.allowHostPaths={/var/lib/scratch}", "volumes.allowInlineTypes={nfs}",
			"logLevel=debug", "extraArgs={--token-expiration-seconds=900}",
		},
	} {
		args := containerArgs(t, render(t, sets...))
		for i, a := range args {
			args[i] = strings.ReplaceAll(a, "$(POD_NAMESPACE)", releaseNamespace)
		}
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "KUBECONFIG="+filepath.Join(t.TempDir(), "none"), "HOME="+t.TempDir(), "KUBERNETES_SERVICE_HOST=")
		out, err := cmd.CombinedOutput()
		assert.Error(t, err, "%v: it cannot run without a cluster", sets)
		assert.NotContains(t, string(out), "warden-webhook: --", "%v: a flag is refused", sets)
		assert.NotContains(t, string(out), "flag provided but not defined", "%v", sets)
		assert.Contains(t, string(out), "no configuration has been provided", "%v: the flags were accepted, then no cluster", sets)
	}
}

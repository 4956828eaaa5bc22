package chart

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warden-dev/warden/pkg/cloudstorage"
	"github.com/warden-dev/warden/pkg/policy"
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
			"broker.acceptTokens=true", "sidecar.certificateLifetime=6h",
			"gcp.identity=true", "gcp.project=my-project", "gcp.adminGroup=warden-admins",
			"sidecar.image.pullPolicy=IfNotPresent", "sidecar.native=false",
			"sidecar.resources.requests.cpu=20m", "sidecar.resources.requests.memory=48Mi",
			"sidecar.resources.limits.cpu=500m", "sidecar.resources.limits.memory=256Mi",
			"exemptNamespaces={monitoring,istio-system}", "volumes.allowHostPaths={/var/lib/scratch}", "volumes.allowInlineTypes={nfs}",
			"logLevel=debug", "extraArgs={--token-expiration-seconds=900}",
		},
		{"storage.enabled=true"},
		{"sidecar.identity=token"},
		{
			"storage.enabled=true", "storage.readTTL=1h", "storage.uploadTTL=3600s", "storage.deleteTTL=15m", "storage.cacheBuffer=2m",
			"storage.maxCommitObjects=500", "storage.endpoints.credentials=iamcredentials.example:443",
			"storage.endpoints.sts=https://sts.example/v1/token", "storage.endpoints.storage=https://gcs.example/storage/v1/",
			"storage.endpoints.pubsub=pubsub.example:443", "storage.endpoints.insecure=true",
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

// The schema's pattern for storage lifetimes (a number without leading zeros and s, m or h)
// accepts exactly the lifetimes the webhook accepts: storage.Lifetimes, which checks
// --storage-{read,upload,delete}-ttl, allows at most an hour. Every such duration up to past the
// limit is tried.
func TestStorageLifetimePatternIsTheWebhooks(t *testing.T) {
	var schema struct {
		Properties struct {
			Storage struct {
				Properties map[string]struct {
					Pattern string `json:"pattern"`
				} `json:"properties"`
			} `json:"storage"`
		} `json:"properties"`
	}
	require.NoError(t, json.Unmarshal(readFile(t, filepath.Join(chartDir(), "values.schema.json")), &schema))
	for _, value := range []string{"readTTL", "uploadTTL", "deleteTTL"} {
		pattern := schema.Properties.Storage.Properties[value].Pattern
		require.NotEmpty(t, pattern, "storage.%s has a pattern", value)
		re := regexp.MustCompile(pattern)
		assert.True(t, re.MatchString(""), "storage.%s may be empty (the webhook's default)", value)
		var accepted int
		for unit, upTo := range map[string]int{"s": 4000, "m": 90, "h": 3} {
			for n := 1; n <= upTo; n++ {
				v := strconv.Itoa(n) + unit
				d, err := time.ParseDuration(v)
				require.NoError(t, err)
				_, err = cloudstorage.Lifetimes(map[policy.Access]time.Duration{policy.AccessRead: d, policy.AccessUpload: d, policy.AccessDelete: d}, 0)
				if err == nil {
					accepted++
				}
				assert.Equal(t, err == nil, re.MatchString(v), "storage.%s=%s: the webhook says %v", value, v, err)
			}
		}
		assert.Equal(t, 3600+60+1, accepted)
	}
}

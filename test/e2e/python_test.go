package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warden-dev/warden/internal/testing/testenv"
	"github.com/warden-dev/warden/pkg/sidecar"
)

// TestPythonClientBroker runs the Python client's broker-mode tests
// (clients/python/tests/broker_suite.py) with the machine's python3 against two sidecars of one
// owner in broker mode: grants from the webhook's broker, secrets in the suite's real Vault, GCP
// identity through the broker and the fake IAM. The local-mode tests run in `make python`.
func TestPythonClientBroker(t *testing.T) {
	setup(t)
	python, err := exec.LookPath("python3")
	if err != nil {
		// Not a skip: the suite never silently skips. .ci/run installs Debian's python3.
		t.Fatalf("python3 is needed for the Python client's tests (apt-get install python3 python3-venv): %v", err)
	}
	// Staged copies are reported where this machine sees them, not at the pod's mount point.
	mut := func(o *sidecar.Options) {
		brokered(o)
		o.DataDir = filepath.Join(o.StagingRoot, "prod", "apps.svc-prod-app-1")
	}
	a := startSidecar(t, "apps", "svc-prod-app-1", "python-a", mut)
	b := startSidecar(t, "apps", "svc-prod-app-1", "python-b", mut)

	cmd := exec.CommandContext(ctx(t), python, "-m", "unittest", "-v", "tests.broker_suite")
	cmd.Dir = filepath.Join(testenv.RepoRoot(), "clients", "python")
	cmd.Env = append(os.Environ(),
		"WARDEN_TEST_URL="+a.url,
		"WARDEN_TEST_URL_2="+b.url,
		"WARDEN_TEST_SNAPSHOT_ROOT="+filepath.Join(a.base, "share"),
		"PYTHONDONTWRITEBYTECODE=1",
	)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "python3 -m unittest tests.broker_suite:\n%s", out)
	t.Logf("%s", out)
	m := regexp.MustCompile(`Ran (\d+) tests?`).FindSubmatch(out)
	require.NotNil(t, m, "no unittest summary:\n%s", out)
	assert.NotEqual(t, "0", string(m[1]), "the broker suite ran no tests")
	assert.NotContains(t, string(out), "skipped", "nothing is skipped")

	// The client's requests reached the sidecar as the caller it named, and its with block
	// deleted the copy it staged.
	raw, err := os.ReadFile(a.audit)
	require.NoError(t, err)
	seen := map[string]bool{}
	for _, line := range strings.Split(string(raw), "\n") {
		var rec struct{ Action, Caller, Outcome string }
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Caller == "user-ds-1" && rec.Outcome == "allowed" {
			seen[rec.Action] = true
		}
	}
	assert.True(t, seen["stage"] && seen["delete"], "audit of the Python client's stage and delete:\n%s", raw)
}

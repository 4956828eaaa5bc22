package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	sidecarapp "github.com/warden-dev/warden/cmd/sidecar/app"
	"github.com/warden-dev/warden/internal/testing/testenv"
	"github.com/warden-dev/warden/pkg/cloudstorage"
)

// TestPythonClientBroker runs the Python client's broker-mode tests
// (clients/python/tests/integration/broker_suite.py) with the machine's python3 against two sidecars of one
// owner in broker mode: grants from the webhook's broker, secrets in the suite's real Vault, GCP
// identity through the broker and the fake IAM, Cloud Storage credentials, signed URLs and a
// commit through the broker and the suite's Google fakes (IAM Credentials, STS, fake-gcs-server,
// pstest). The local-mode tests run in `make python`.
func TestPythonClientBroker(t *testing.T) {
	setup(t)
	pythonStorageFixtures(t)
	python, err := exec.LookPath("python3")
	if err != nil {
		// Not a skip: the suite never silently skips. .ci/run installs Debian's python3.
		t.Fatalf("python3 is needed for the Python client's tests (apt-get install python3 python3-venv): %v", err)
	}
	// Staged copies are reported where this machine sees them, not at the pod's mount point.
	mut := func(o *sidecarapp.Options) {
		brokered(o)
		o.DataDir = filepath.Join(o.StagingRoot, "prod", "apps.svc-prod-app-1")
	}
	a := startSidecar(t, "apps", "svc-prod-app-1", "python-a", mut)
	b := startSidecar(t, "apps", "svc-prod-app-1", "python-b", mut)

	// A person outside any pod, allowed to manage the owner's secrets (RBAC on owners/secrets).
	pyla := personToken(t, "pyla")
	bindOwnerSecrets(t, "apps", "pyla-owner-secrets", "warden-owner-secrets", "pyla")

	cmd := exec.CommandContext(ctx(t), python, "-m", "unittest", "-v", "tests.integration.broker_suite")
	cmd.Dir = filepath.Join(testenv.RepoRoot(), "clients", "python")
	out := t.TempDir()
	cmd.Env = append(os.Environ(),
		"WARDEN_TEST_URL="+a.url,
		"WARDEN_TEST_URL_2="+b.url,
		"WARDEN_TEST_SNAPSHOT_ROOT="+filepath.Join(a.base, "share"),
		"WARDEN_TEST_GCS="+gcp.GCSEndpoint(),
		"WARDEN_TEST_OUT="+out,
		"WARDEN_TEST_BROKER_URL="+brokerURL,
		"WARDEN_TEST_BROKER_CA="+filepath.Join(env.CertDir, "ca.crt"),
		"WARDEN_TEST_PERSON_TOKEN="+pyla,
		"PYTHONDONTWRITEBYTECODE=1",
	)
	log, err := cmd.CombinedOutput()
	require.NoError(t, err, "python3 -m unittest tests.integration.broker_suite:\n%s", log)
	t.Logf("%s", log)
	m := regexp.MustCompile(`Ran (\d+) tests?`).FindSubmatch(log)
	require.NotNil(t, m, "no unittest summary:\n%s", log)
	assert.NotEqual(t, "0", string(m[1]), "the broker suite ran no tests")
	assert.NotContains(t, string(log), "skipped", "nothing is skipped")

	// The commit the Python client made reached Pub/Sub: the message it was told about, for the
	// two files it uploaded with signed URLs, committed by the owner for user-ds-1.
	raw, err := os.ReadFile(filepath.Join(out, "commit.json"))
	require.NoError(t, err, "the broker suite writes its commit")
	var pc struct {
		MessageID string   `json:"message_id"`
		RootDir   string   `json:"root_dir"`
		Objects   []string `json:"objects"`
	}
	require.NoError(t, json.Unmarshal(raw, &pc))
	var n cloudstorage.Notification
	found := false
	for _, msg := range gcp.PubSub.Messages() {
		if msg.ID == pc.MessageID {
			found = true
			assert.Equal(t, "incoming/python-batch/", msg.Attributes["root_dir"])
			assert.Equal(t, cloudstorage.EventCommit, msg.Attributes["event"])
			require.NoError(t, json.Unmarshal(msg.Data, &n))
		}
	}
	require.True(t, found, "Pub/Sub has no message %q", pc.MessageID)
	assert.Equal(t, "incoming/python-batch/", pc.RootDir)
	assert.Equal(t, "serviceAccount:apps/svc-prod-app-1 for user-ds-1", n.CommittedBy)
	assert.Equal(t, "org1-landing", n.Bucket)
	var names []string
	for _, o := range n.Objects {
		names = append(names, o.Name)
	}
	assert.ElementsMatch(t, []string{"incoming/python-batch/a.csv", "incoming/python-batch/sub/b.csv"}, names)
	assert.ElementsMatch(t, pc.Objects, names)

	// The client's requests reached the sidecar as the caller it named, and its with block
	// deleted the copy it staged.
	raw, err = os.ReadFile(a.audit)
	require.NoError(t, err)
	seen := map[string]bool{}
	for _, line := range strings.Split(string(raw), "\n") {
		var rec struct{ Action, Caller, Outcome, Target string }
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Caller == "user-ds-1" && rec.Outcome == "allowed" {
			seen[rec.Action] = true
			if rec.Action == "storage-commit" {
				seen["commit target"] = seen["commit target"] || rec.Target == "gs://org1-landing/incoming/python-batch/"
			}
		}
	}
	assert.True(t, seen["stage"] && seen["delete"], "audit of the Python client's stage and delete:\n%s", raw)
	assert.True(t, seen["storage-credentials"] && seen["storage-signed-url"] && seen["commit target"],
		"audit of the Python client's storage calls:\n%s", raw)
}

// pythonStorageFixtures gives the broker suite what its storage tests need in the suite's Google
// fakes: the buckets of org1's loadingzone and curated spaces, one object to read in curated,
// and org1's commit topic. Other tests create the same buckets (idempotent) and the topic; a
// topic this test created is deleted again, so that a test that creates it afterwards can.
func pythonStorageFixtures(t *testing.T) {
	t.Helper()
	gcp.GCS.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: "org1-landing"})
	gcp.GCS.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: "org1-data"})
	gcp.GCS.CreateObject(fakestorage.Object{
		ObjectAttrs: fakestorage.ObjectAttrs{BucketName: "org1-data", Name: "curated/python/hello.csv", ContentType: "text/csv"},
		Content:     []byte("greeting\nhello from curated\n"),
	})
	err := gcp.CreateTopic(ctx(t), "my-project", "org1-commits")
	if status.Code(err) == codes.AlreadyExists {
		return
	}
	require.NoError(t, err)
	t.Cleanup(func() {
		_, err := gcp.PubSub.GServer.DeleteTopic(context.Background(), &pubsubpb.DeleteTopicRequest{Topic: "projects/my-project/topics/org1-commits"})
		assert.NoError(t, err)
	})
}

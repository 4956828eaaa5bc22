package cli

import (
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warden-dev/warden/pkg/brokerapi"
)

// `warden access` asks the sidecar, or with --broker the broker, at the wire packages' paths.
func TestAccess(t *testing.T) {
	var uris []string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		uris = append(uris, r.Method+" "+r.URL.RequestURI())
		if r.URL.Path != brokerapi.PathAccess {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(brokerapi.Access{Subjects: []string{"serviceAccount:apps/etl", "user:ann"},
			Datasets: []brokerapi.DatasetAccess{{ID: "d1", Permissions: []string{"read"}}},
			Orgs:     []brokerapi.OrgAccess{{Name: "org1", GCPServiceAccount: "a@p.iam.gserviceaccount.com", Permissions: []string{"assume"}}}})
	})
	pod := httptest.NewServer(h)
	defer pod.Close()
	broker := httptest.NewTLSServer(h)
	defer broker.Close()
	ca := filepath.Join(t.TempDir(), "ca.crt")
	require.NoError(t, os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: broker.Certificate().Raw}), 0o600))
	tok := kubeconfig(t, `{token: person-token}`)
	viaBroker := []string{"--broker", broker.URL, "--broker-ca", ca, "--kubeconfig", tok}

	for _, tc := range []struct {
		name    string
		args    []string
		uri     string
		want    string
		wantErr string
	}{
		{"in a pod", []string{"--url", pod.URL}, "GET /v1/access", "for serviceAccount:apps/etl and user:ann\ndataset d1: read\norg org1 (a@p.iam.gserviceaccount.com): assume\n", ""},
		{"in a pod, one permission", []string{"--url", pod.URL, "--permission", "read"}, "GET /v1/access?permission=read", "dataset d1: read", ""},
		{"as JSON", []string{"--url", pod.URL, "--json"}, "GET /v1/access", `"gcp_service_account": "a@p.iam.gserviceaccount.com"`, ""},
		{"at the broker", viaBroker, "GET /v1/access", "dataset d1: read", ""},
		{"at the broker, for another user", append([]string{"--user", "bob", "--permission", "assume"}, viaBroker...), "GET /v1/access?permission=assume&user=bob", "org org1", ""},
		{"--user in a pod", []string{"--url", pod.URL, "--user", "bob"}, "", "", "--user needs --broker"},
		{"no sidecar", []string{"--url", "http://127.0.0.1:1"}, "", "", "the Warden sidecar is not reachable at http://127.0.0.1:1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			uris = nil
			out, err := run(t, "", append([]string{"access"}, tc.args...)...)
			if tc.wantErr != "" {
				assert.ErrorContains(t, err, tc.wantErr)
				assert.Empty(t, uris)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, []string{tc.uri}, uris)
			assert.Contains(t, out, tc.want)
		})
	}
}

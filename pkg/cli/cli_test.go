package cli

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeAPI is the secrets API as the sidecar and the broker serve it, recording requests.
type fakeAPI struct {
	mu      sync.Mutex
	data    map[string]json.RawMessage
	version int
	reqs    []string
	auth    []string
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, r.Method+" "+r.URL.RequestURI())
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	base := strings.TrimSuffix(r.URL.Path, "/")
	key := ""
	if i := strings.Index(base, "/secrets/"); i >= 0 {
		key = base[i+len("/secrets/"):]
	}
	w.Header().Set("ETag", `"v`+string(rune('0'+f.version))+`"`)
	switch {
	case r.Method == "GET" && key != "":
		v, ok := f.data[key]
		if !ok {
			w.WriteHeader(404)
			_, _ = io.WriteString(w, `{"error":"secret not found","code":"not_found"}`)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"key": key, "value": v})
	case r.Method == "GET" && r.URL.Query().Get("all") == "true":
		_ = json.NewEncoder(w).Encode(f.data)
	case r.Method == "GET":
		keys := []string{}
		for k := range f.data {
			keys = append(keys, k)
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": keys})
	case r.Method == "PUT":
		var in map[string]json.RawMessage
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			w.WriteHeader(400)
			return
		}
		f.data, f.version = in, f.version+1
		w.WriteHeader(204)
	case r.Method == "DELETE" && key == "":
		f.data, f.version = map[string]json.RawMessage{}, f.version+1
		w.WriteHeader(204)
	case r.Method == "DELETE":
		delete(f.data, key)
		w.WriteHeader(204)
	}
}

func run(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := Run(args, strings.NewReader(stdin), &out, &errOut)
	return out.String(), err
}

func TestSecretsInAPod(t *testing.T) {
	f := &fakeAPI{data: map[string]json.RawMessage{"user": json.RawMessage(`"app"`)}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	_, err := run(t, "5432\n", "secrets", "--url", srv.URL, "--set", "port", "--json")
	require.NoError(t, err)
	assert.JSONEq(t, `5432`, string(f.data["port"]), "a JSON value stays a number")
	_, err = run(t, "5432\n", "secrets", "--url", srv.URL, "--set", "text-port")
	require.NoError(t, err)
	assert.JSONEq(t, `"5432"`, string(f.data["text-port"]), "without --json a value is text")
	_, err = run(t, "{oops\n", "secrets", "--url", srv.URL, "--set", "bad", "--json")
	assert.ErrorContains(t, err, "not JSON")

	out, err := run(t, "", "secrets", "--url", srv.URL, "--get", "port")
	require.NoError(t, err)
	assert.Equal(t, "5432\n", out)
	out, err = run(t, "", "secrets", "--url", srv.URL, "--get", "user")
	require.NoError(t, err)
	assert.Equal(t, "app\n", out, "strings print as text")

	file := filepath.Join(t.TempDir(), "all.json")
	require.NoError(t, os.WriteFile(file, []byte(`{"tls":{"verify":true},"hosts":["a"]}`), 0o600))
	_, err = run(t, "", "secrets", "--url", srv.URL, "--overwrite-all", file)
	require.NoError(t, err)
	out, err = run(t, "", "secrets", "--url", srv.URL, "--list", "--show-secrets")
	require.NoError(t, err)
	assert.Equal(t, "hosts=[\"a\"]\ntls={\"verify\":true}\n", out)
	require.NoError(t, os.WriteFile(file, []byte(`["not","an","object"]`), 0o600))
	_, err = run(t, "", "secrets", "--url", srv.URL, "--overwrite-all", file)
	assert.ErrorContains(t, err, "JSON object of secrets")

	_, err = run(t, "", "secrets", "--url", srv.URL, "--delete-all")
	require.NoError(t, err)
	assert.Empty(t, f.data)
	assert.Contains(t, f.reqs, "DELETE /v1/secrets")

	_, err = run(t, "", "secrets", "--url", srv.URL, "--list", "--delete-all")
	assert.ErrorContains(t, err, "exactly one")
	_, err = run(t, "", "frobnicate")
	assert.ErrorContains(t, err, "usage")
}

// kubeconfig writes a kubeconfig whose user is the given YAML.
func kubeconfig(t *testing.T, user string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, os.WriteFile(file, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: `+user+`}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600))
	return file
}

func TestSecretsFromOutside(t *testing.T) {
	f := &fakeAPI{data: map[string]json.RawMessage{}}
	srv := httptest.NewTLSServer(f)
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.crt")
	require.NoError(t, os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600))
	outside := func(kc string, args ...string) []string {
		return append([]string{"secrets", "--owner", "apps/etl", "--broker", srv.URL, "--broker-ca", ca, "--kubeconfig", kc}, args...)
	}

	tok := kubeconfig(t, `{token: person-token}`)
	_, err := run(t, "v\n", outside(tok, "--set", "k")...)
	require.NoError(t, err)
	assert.Contains(t, f.reqs, "PUT /v1/owners/apps/etl/secrets")
	assert.Equal(t, "Bearer person-token", f.auth[len(f.auth)-1], "the kubeconfig's token, to the broker only")

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"a client certificate", outside(kubeconfig(t, `{client-certificate-data: "", client-key-data: ""}`), "--list"), "no bearer token"},
		{"impersonation", outside(kubeconfig(t, `{token: t, as: someone}`), "--list"), "impersonation"},
		{"plain http", []string{"secrets", "--owner", "apps/etl", "--broker", "http://127.0.0.1:1", "--kubeconfig", tok, "--list"}, "https://"},
		{"no broker", []string{"secrets", "--owner", "apps/etl", "--broker", "", "--kubeconfig", tok, "--list"}, "--broker"},
		{"a bad owner", []string{"secrets", "--owner", "apps/../x", "--broker", srv.URL, "--kubeconfig", tok, "--list"}, "--owner"},
		{"an untrusted broker", []string{"secrets", "--owner", "apps/etl", "--broker", srv.URL, "--kubeconfig", tok, "--list"}, "not reachable"},
		{"a CA file without certificates", outside(tok, "--broker-ca", tok, "--list"), "no PEM certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := run(t, "", tc.args...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

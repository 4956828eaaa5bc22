package sidecar

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warden-dev/warden/pkg/audit"
	"github.com/warden-dev/warden/pkg/contract"
	"github.com/warden-dev/warden/pkg/grants"
	"github.com/warden-dev/warden/pkg/policy"
	"github.com/warden-dev/warden/pkg/sidecarapi"
	"github.com/warden-dev/warden/pkg/stage"
)

// The secure-datasets README's scenario, transcribed from its tables (not derived from the
// policy file, which is what is under test).
var (
	// Domino service accounts and their environments ("Domino Service Accounts" table).
	seedOwners = map[string]string{
		"ds/svc-user-ds-1": "dev", "ds/svc-user-ds-2": "dev", "ds/svc-user-ds-3": "dev",
		"apps/svc-test-app-1": "test", "apps/svc-prod-app-1": "prod",
	}
	seedUsers = []string{"integration-test", "user-ds-1", "user-ds-2", "user-ds-3", "dev-app-1-owner", "test-app-1-owner", "prod-app-1-owner"}
	svcDev    = []string{"ds/svc-user-ds-1", "ds/svc-user-ds-2", "ds/svc-user-ds-3"}
	// The "Domino Datasets" table: readers of each dataset.
	seedReaders = map[string][]string{
		"dataset-1":      {"user-ds-1", "user-ds-2", "user-ds-3"},
		"dataset-2":      {"user-ds-2", "user-ds-3"},
		"dataset-3":      {"user-ds-3"},
		"dev-dataset-1":  append(slices.Clone(svcDev), "user-ds-1", "user-ds-2", "user-ds-3"),
		"dev-dataset-2":  append(slices.Clone(svcDev), "user-ds-2", "user-ds-3"),
		"dev-dataset-3":  append(slices.Clone(svcDev), "user-ds-3"),
		"test-dataset-1": {"apps/svc-test-app-1", "user-ds-1", "user-ds-2", "user-ds-3"},
		"test-dataset-2": {"apps/svc-test-app-1", "user-ds-2", "user-ds-3"},
		"test-dataset-3": {"apps/svc-test-app-1", "user-ds-3"},
		"prod-dataset-1": {"apps/svc-prod-app-1", "user-ds-1", "user-ds-2", "user-ds-3"},
		"prod-dataset-2": {"apps/svc-prod-app-1", "user-ds-2", "user-ds-3"},
		"prod-dataset-3": {"apps/svc-prod-app-1", "user-ds-3"},
	}
)

type harness struct {
	t       testing.TB
	srv     *httptest.Server
	stager  *stage.Stager
	audit   *bytes.Buffer
	share   string
	staging string
}

// newHarness runs the sidecar API for owner in local mode with the example policy and a share
// holding one file per dataset.
func newHarness(t testing.TB, owner, env string, mut ...func(*Config)) *harness {
	t.Helper()
	pol, err := policy.Load("../../examples/policy.yaml")
	require.NoError(t, err)
	base := t.TempDir()
	h := &harness{t: t, audit: &bytes.Buffer{}, share: filepath.Join(base, "share"), staging: filepath.Join(base, "staging")}
	for _, d := range pol.Datasets {
		dir := filepath.Join(h.share, d.Snapshot)
		require.NoError(t, os.MkdirAll(filepath.Join(dir, "sub"), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "data.csv"), []byte("dataset "+d.ID+"\n"), 0o644))
		for name, snap := range d.Snapshots {
			require.NoError(t, os.MkdirAll(filepath.Join(h.share, snap), 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(h.share, snap, "data.csv"), []byte("snapshot "+name+"\n"), 0o644))
		}
	}
	workload := contract.WorkloadApp
	al := audit.New(h.audit, "pod-1", "uid-1")
	h.stager, err = stage.New(stage.Config{
		SnapshotRoot: h.share, StagingRoot: h.staging, StateDir: filepath.Join(base, "state"),
		Owner: owner, Environment: env, Workload: workload,
	}, al, nil)
	require.NoError(t, err)
	cfg := Config{
		Owner: owner, Environment: env, Workload: workload,
		Grants:  grants.NewPolicyEngine(func() policy.View { return pol }),
		Stager:  h.stager,
		Callers: HeaderCallers{Owner: owner},
		Audit:   al,
	}
	for _, m := range mut {
		m(&cfg)
	}
	srv, err := New(cfg)
	require.NoError(t, err)
	h.srv = httptest.NewServer(srv)
	t.Cleanup(h.srv.Close)
	return h
}

func (h *harness) do(method, path, caller string, body any) (int, map[string]any) {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		require.NoError(h.t, err)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, h.srv.URL+path, rd)
	require.NoError(h.t, err)
	if caller != "" {
		req.Header.Set(CallerHeader, caller)
	}
	resp, err := h.srv.Client().Do(req)
	require.NoError(h.t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := map[string]any{}
	if len(raw) > 0 {
		require.NoError(h.t, json.Unmarshal(raw, &out), "%s %s: body %q", method, path, raw)
	}
	return resp.StatusCode, out
}

func TestSeedScenario(t *testing.T) {
	// The owner of a listing also appears as a caller of its own pod ("" = no header).
	callers := append([]string{""}, seedUsers...)
	checked := 0
	for owner, env := range seedOwners {
		h := newHarness(t, owner, env)
		for _, caller := range callers {
			var want []string
			for ds, readers := range seedReaders {
				ownerOK := slices.Contains(readers, owner) && strings.HasPrefix(ds, env+"-")
				callerOK := slices.Contains(readers, caller) || (caller == "" && slices.Contains(readers, owner))
				code, body := h.do("GET", "/v1/datasets/"+ds+"/access", caller, nil)
				allowed := ownerOK && callerOK
				if allowed {
					want = append(want, ds)
				}
				name := fmt.Sprintf("owner %s, caller %q, dataset %s", owner, caller, ds)
				assert.Equal(t, map[bool]int{true: 200, false: 403}[allowed], code, name)
				assert.Equal(t, ownerOK, body["owner"].(map[string]any)["can_read"], name)
				assert.Equal(t, callerOK, body["caller"].(map[string]any)["can_read"], name)
				checked++
			}
			sort.Strings(want)
			code, body := h.do("GET", "/v1/datasets", caller, nil)
			require.Equal(t, 200, code)
			var got []string
			for _, d := range body["datasets"].([]any) {
				got = append(got, d.(map[string]any)["id"].(string))
			}
			sort.Strings(got)
			assert.Equal(t, want, got, "listing for owner %s, caller %q", owner, caller)
		}
	}
	assert.Equal(t, len(seedOwners)*(len(seedUsers)+1)*len(seedReaders), checked)
}

func TestStageOverHTTP(t *testing.T) {
	h := newHarness(t, "apps/svc-prod-app-1", "prod")
	code, body := h.do("POST", "/v1/datasets/prod-dataset-1/stage", "user-ds-2", sidecarapi.StageRequest{Path: "data.csv", TTLSeconds: 60})
	require.Equal(t, 201, code, body)
	p := body["path"].(string)
	name := body["name"].(string)
	assert.True(t, strings.HasPrefix(p, "/secure/datasets/data/user=user-ds-2/"), p)
	target := filepath.Join(h.staging, "prod/apps.svc-prod-app-1/user=user-ds-2", name)
	data, err := os.ReadFile(target)
	require.NoError(t, err)
	assert.Equal(t, "dataset prod-dataset-1\n", string(data))
	assert.EqualValues(t, len(data), body["size"])
	assert.Len(t, body["sha256"], 64)
	assert.NotEmpty(t, body["expires_at"])

	// An older snapshot named in the policy.
	code, body = h.do("POST", "/v1/datasets/prod-dataset-1/stage", "user-ds-2", sidecarapi.StageRequest{Path: "data.csv", Snapshot: "2026-10-01"})
	require.Equal(t, 201, code, body)
	old, err := os.ReadFile(filepath.Join(h.staging, "prod/apps.svc-prod-app-1/user=user-ds-2", body["name"].(string)))
	require.NoError(t, err)
	assert.Equal(t, "snapshot 2026-10-01\n", string(old))
	code, _ = h.do("POST", "/v1/datasets/prod-dataset-1/stage", "user-ds-2", sidecarapi.StageRequest{Path: "data.csv", Snapshot: "1999-01-01"})
	assert.Equal(t, 404, code)

	code, body = h.do("GET", "/v1/datasets/prod-dataset-1/files?path=", "user-ds-2", nil)
	require.Equal(t, 200, code)
	names := []string{}
	for _, e := range body["entries"].([]any) {
		names = append(names, e.(map[string]any)["name"].(string))
	}
	assert.ElementsMatch(t, []string{"data.csv", "sub"}, names)

	// Only the caller it was staged for may delete it.
	code, _ = h.do("DELETE", "/v1/staged/"+name, "user-ds-3", nil)
	assert.Equal(t, 404, code)
	code, _ = h.do("DELETE", "/v1/staged/"+name, "user-ds-2", nil)
	assert.Equal(t, 204, code)
	_, err = os.Stat(target)
	assert.True(t, os.IsNotExist(err))
	code, _ = h.do("DELETE", "/v1/staged/"+name, "user-ds-2", nil)
	assert.Equal(t, 404, code)

	// A denied caller gets nothing staged and learns no location.
	code, body = h.do("POST", "/v1/datasets/prod-dataset-3/stage", "user-ds-1", sidecarapi.StageRequest{Path: "data.csv"})
	assert.Equal(t, 403, code)
	assert.NotContains(t, fmt.Sprint(body), "prod/dataset-3")
	code, _ = h.do("GET", "/v1/datasets/prod-dataset-3/files", "user-ds-1", nil)
	assert.Equal(t, 403, code)
}

func TestHostileRequests(t *testing.T) {
	h := newHarness(t, "apps/svc-prod-app-1", "prod")
	for _, tc := range []struct {
		name, method, path, caller string
		body                       any
		code                       int
		errCode                    string
	}{
		{"unknown endpoint", "GET", "/v1/nope", "", nil, 404, "not_found"},
		{"wrong method", "PUT", "/v1/datasets", "", nil, 405, "method_not_allowed"},
		{"wrong method on stage", "GET", "/v1/datasets/prod-dataset-1/stage", "", nil, 405, "method_not_allowed"},
		{"malformed JSON", "POST", "/v1/datasets/prod-dataset-1/stage", "", `{"path":`, 400, "bad_request"},
		{"not an object", "POST", "/v1/datasets/prod-dataset-1/stage", "", `["data.csv"]`, 400, "bad_request"},
		{"unknown field", "POST", "/v1/datasets/prod-dataset-1/stage", "", `{"path":"data.csv","owner":"someone-else"}`, 400, "bad_request"},
		{"trailing data", "POST", "/v1/datasets/prod-dataset-1/stage", "", `{"path":"data.csv"}{"path":"x"}`, 400, "bad_request"},
		{"empty body", "POST", "/v1/datasets/prod-dataset-1/stage", "", ``, 400, "bad_request"},
		{"oversized body", "POST", "/v1/datasets/prod-dataset-1/stage", "", `{"path":"` + strings.Repeat("a", 70<<10) + `"}`, 413, "payload_too_large"},
		{"negative ttl", "POST", "/v1/datasets/prod-dataset-1/stage", "", `{"path":"data.csv","ttl_seconds":-1}`, 400, "bad_request"},
		{"absurd ttl", "POST", "/v1/datasets/prod-dataset-1/stage", "", `{"path":"data.csv","ttl_seconds":9223372036854775807}`, 400, "bad_request"},
		{"ttl not a number", "POST", "/v1/datasets/prod-dataset-1/stage", "", `{"path":"data.csv","ttl_seconds":"300"}`, 400, "bad_request"},
		{"traversal", "POST", "/v1/datasets/prod-dataset-1/stage", "", `{"path":"../../dataset-2/rw/data.csv"}`, 400, "bad_request"},
		{"absolute", "POST", "/v1/datasets/prod-dataset-1/stage", "", `{"path":"/etc/passwd"}`, 400, "bad_request"},
		{"directory", "POST", "/v1/datasets/prod-dataset-1/stage", "", `{"path":"sub"}`, 400, "bad_request"},
		{"missing file", "POST", "/v1/datasets/prod-dataset-1/stage", "", `{"path":"nope.csv"}`, 404, "not_found"},
		{"bad dataset id", "GET", "/v1/datasets/..%2Fetc/access", "", nil, 400, "bad_request"},
		{"unknown dataset", "GET", "/v1/datasets/no-such-dataset/access", "", nil, 403, ""},
		{"dataset of another environment", "POST", "/v1/datasets/dev-dataset-1/stage", "user-ds-1", `{"path":"data.csv"}`, 403, "forbidden"},
		{"bad caller", "GET", "/v1/datasets", "user ds 1", nil, 400, "bad_request"},
		{"caller with slash", "GET", "/v1/datasets", "../../etc", nil, 400, "bad_request"},
		{"listing traversal", "GET", "/v1/datasets/prod-dataset-1/files?path=../../..", "", nil, 400, "bad_request"},
		{"listing a file", "GET", "/v1/datasets/prod-dataset-1/files?path=data.csv", "", nil, 400, "bad_request"},
		{"delete bad name", "DELETE", "/v1/staged/..%2F..%2Fstate", "", nil, 400, "bad_request"},
		{"delete unknown", "DELETE", "/v1/staged/0123456789abcdef0123-x.csv", "", nil, 404, "not_found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := h.do(tc.method, tc.path, tc.caller, tc.body)
			assert.Equal(t, tc.code, code, "%v", body)
			if tc.errCode != "" {
				assert.Equal(t, tc.errCode, body["code"], "%v", body)
				assert.NotEmpty(t, body["error"])
			}
		})
	}
	// Two caller headers are ambiguous.
	req, _ := http.NewRequest("GET", h.srv.URL+"/v1/datasets", nil)
	req.Header.Add(CallerHeader, "user-ds-1")
	req.Header.Add(CallerHeader, "user-ds-3")
	resp, err := h.srv.Client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 400, resp.StatusCode)
	files, _ := filepath.Glob(filepath.Join(h.staging, "prod/*/*/*"))
	assert.Empty(t, files, "nothing was staged")
}

func TestAuditLines(t *testing.T) {
	h := newHarness(t, "apps/svc-prod-app-1", "prod")
	h.do("GET", "/v1/datasets", "user-ds-1", nil)
	h.do("GET", "/v1/datasets/prod-dataset-3/access", "user-ds-1", nil)
	_, body := h.do("POST", "/v1/datasets/prod-dataset-1/stage", "user-ds-1", sidecarapi.StageRequest{Path: "data.csv", TTLSeconds: 30})
	h.do("DELETE", "/v1/staged/"+body["name"].(string), "user-ds-1", nil)
	h.do("POST", "/v1/datasets/prod-dataset-1/stage", "", `{"path":"../x"}`)

	var recs []audit.Record
	for _, line := range strings.Split(strings.TrimSpace(h.audit.String()), "\n") {
		var r audit.Record
		require.NoError(t, json.Unmarshal([]byte(line), &r), line)
		recs = append(recs, r)
		assert.Equal(t, "apps/svc-prod-app-1", r.Owner)
		assert.Equal(t, "pod-1", r.Pod)
		assert.Equal(t, "uid-1", r.PodUID)
		assert.NotEmpty(t, r.Outcome)
		assert.False(t, r.Time.IsZero())
	}
	require.Len(t, recs, 5)
	assert.Equal(t, []string{"list", "access", "stage", "delete", "stage"}, []string{recs[0].Action, recs[1].Action, recs[2].Action, recs[3].Action, recs[4].Action})
	assert.Equal(t, audit.Denied, recs[1].Outcome)
	assert.Equal(t, "caller may not read the dataset", recs[1].Reason)
	st := recs[2]
	assert.Equal(t, "user-ds-1", st.Caller)
	assert.Equal(t, "prod-dataset-1", st.Dataset)
	assert.Equal(t, "prod/dataset-1/rw", st.Snapshot)
	assert.Equal(t, "data.csv", st.Source)
	assert.Contains(t, st.Target, "user=user-ds-1")
	assert.EqualValues(t, 30, st.TTL)
	assert.Equal(t, audit.Allowed, st.Outcome)
	assert.Equal(t, audit.Denied, recs[4].Outcome)
	assert.Contains(t, recs[4].Reason, "..")
}

package secrets

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// fakeVault answers the few endpoints the package calls, with Vault's status codes and bodies
// where the package depends on them: Kubernetes login, token renew-self and revoke-self, and one
// KV v2 entry (read, check-and-set write, metadata). The e2e suite runs the same code against a
// real Vault; this fake makes the failure cases cheap and exact.
type fakeVault struct {
	srv *httptest.Server

	mu        sync.Mutex
	role, jwt string // what a login must present
	namespace string // when set, the X-Vault-Namespace every request must carry
	renewable bool
	lease     int // seconds
	path      string
	live      map[string]bool // tokens Vault honours
	serial    int
	versions  []fakeVersion // versions[i] is version i+1
	fail      map[string]fakeFailure
	calls     map[string]int
	lastCAS   int
	lastLogin map[string]any
	odd       []string // requests the package should never make
}

type fakeVersion struct {
	data    map[string]any
	deleted bool
}

// fakeFailure replaces the answer to one kind of call.
type fakeFailure struct {
	status int
	errors []string
}

// Kinds of calls, for fail and calls.
const (
	callLogin    = "login"
	callRenew    = "renew"
	callRevoke   = "revoke"
	callRead     = "read"
	callWrite    = "write"
	callMetadata = "metadata"
)

const (
	testRole = "warden-apps-svc"
	testJWT  = "eyJ.the-projected-token.sig"
	testPath = "warden/apps/svc"
)

func newFakeVault(t *testing.T) *fakeVault {
	t.Helper()
	f := &fakeVault{role: testRole, jwt: testJWT, renewable: true, lease: 3600, path: testPath,
		live: map[string]bool{}, fail: map[string]fakeFailure{}, calls: map[string]int{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(func() {
		f.srv.Close()
		f.mu.Lock()
		defer f.mu.Unlock()
		assert.Empty(t, f.odd, "requests the package should not make")
	})
	return f
}

func (f *fakeVault) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.namespace != "" && r.Header.Get("X-Vault-Namespace") != f.namespace {
		f.odd = append(f.odd, "without namespace: "+r.Method+" "+r.URL.Path)
		reply(w, http.StatusForbidden, errorsBody("permission denied"))
		return
	}
	write := r.Method == http.MethodPut || r.Method == http.MethodPost
	kind := ""
	switch {
	case r.URL.Path == "/v1/auth/kubernetes/login" && write:
		kind = callLogin
	case r.URL.Path == "/v1/auth/token/renew-self" && write:
		kind = callRenew
	case r.URL.Path == "/v1/auth/token/revoke-self" && write:
		kind = callRevoke
	case r.URL.Path == "/v1/secret/data/"+f.path && r.Method == http.MethodGet:
		kind = callRead
	case r.URL.Path == "/v1/secret/data/"+f.path && write:
		kind = callWrite
	case r.URL.Path == "/v1/secret/metadata/"+f.path && r.Method == http.MethodGet:
		kind = callMetadata
	default:
		f.odd = append(f.odd, r.Method+" "+r.URL.Path)
		reply(w, http.StatusForbidden, errorsBody("permission denied"))
		return
	}
	f.calls[kind]++
	if fl, ok := f.fail[kind]; ok {
		reply(w, fl.status, errorsBody(fl.errors...))
		return
	}
	token := r.Header.Get("X-Vault-Token")
	if kind != callLogin && !f.live[token] {
		reply(w, http.StatusForbidden, errorsBody("permission denied"))
		return
	}
	var body map[string]any
	if write {
		dec := json.NewDecoder(r.Body)
		dec.UseNumber() // as Vault's jsonutil: numbers keep their digits
		if err := dec.Decode(&body); err != nil && kind != callRevoke {
			reply(w, http.StatusBadRequest, errorsBody("failed to parse JSON input: "+err.Error()))
			return
		}
	}
	switch kind {
	case callLogin:
		f.login(w, body)
	case callRenew:
		reply(w, http.StatusOK, f.authBody(token, f.accessorOf(token)))
	case callRevoke:
		delete(f.live, token)
		w.WriteHeader(http.StatusNoContent)
	case callRead:
		f.read(w)
	case callWrite:
		f.write(w, body)
	case callMetadata:
		f.metadata(w)
	}
}

func (f *fakeVault) login(w http.ResponseWriter, body map[string]any) {
	f.lastLogin = body
	if body["role"] != f.role || body["jwt"] != f.jwt {
		reply(w, http.StatusForbidden, errorsBody("permission denied"))
		return
	}
	f.serial++
	token := fmt.Sprintf("hvs.token-%d", f.serial)
	f.live[token] = true
	reply(w, http.StatusOK, f.authBody(token, fmt.Sprintf("accessor-%d", f.serial)))
}

func (f *fakeVault) accessorOf(token string) string {
	return "accessor-" + strings.TrimPrefix(token, "hvs.token-")
}

func (f *fakeVault) authBody(token, accessor string) map[string]any {
	return map[string]any{"auth": map[string]any{
		"client_token": token, "accessor": accessor, "policies": []string{"default", "warden-owner"},
		"lease_duration": f.lease, "renewable": f.renewable,
	}}
}

func versionMetadata(v int, deleted bool) map[string]any {
	md := map[string]any{"created_time": "2026-11-26T09:00:00Z", "custom_metadata": nil,
		"deletion_time": "", "destroyed": false, "version": v}
	if deleted {
		md["deletion_time"] = "2026-11-26T09:30:00Z"
	}
	return md
}

func (f *fakeVault) read(w http.ResponseWriter) {
	n := len(f.versions)
	switch {
	case n == 0:
		reply(w, http.StatusNotFound, errorsBody())
	case f.versions[n-1].deleted:
		// Vault answers a deleted latest version with 404 and its metadata.
		reply(w, http.StatusNotFound, map[string]any{"data": map[string]any{"data": nil, "metadata": versionMetadata(n, true)}})
	default:
		reply(w, http.StatusOK, map[string]any{"data": map[string]any{"data": f.versions[n-1].data, "metadata": versionMetadata(n, false)}})
	}
}

func (f *fakeVault) write(w http.ResponseWriter, body map[string]any) {
	data, ok := body["data"].(map[string]any)
	if !ok {
		reply(w, http.StatusBadRequest, errorsBody("no data provided"))
		return
	}
	if opts, ok := body["options"].(map[string]any); ok {
		if n, ok := opts["cas"].(json.Number); ok {
			cas, _ := n.Int64()
			f.lastCAS = int(cas)
			if int(cas) != len(f.versions) {
				reply(w, http.StatusBadRequest, errorsBody("check-and-set parameter did not match the current version"))
				return
			}
		}
	}
	f.versions = append(f.versions, fakeVersion{data: data})
	reply(w, http.StatusOK, map[string]any{"data": versionMetadata(len(f.versions), false)})
}

func (f *fakeVault) metadata(w http.ResponseWriter) {
	if len(f.versions) == 0 {
		reply(w, http.StatusNotFound, errorsBody())
		return
	}
	versions := map[string]any{}
	for i, v := range f.versions {
		md := versionMetadata(i+1, v.deleted)
		delete(md, "version")
		delete(md, "custom_metadata")
		versions[fmt.Sprint(i+1)] = md
	}
	reply(w, http.StatusOK, map[string]any{"data": map[string]any{
		"cas_required": false, "created_time": "2026-11-26T09:00:00Z", "current_version": len(f.versions),
		"custom_metadata": nil, "delete_version_after": "0s", "max_versions": 0, "oldest_version": 0,
		"updated_time": "2026-11-26T09:00:00Z", "versions": versions,
	}})
}

func errorsBody(errs ...string) map[string]any {
	if errs == nil {
		errs = []string{}
	}
	return map[string]any{"errors": errs}
}

func reply(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// Test controls, each under the lock.

// set changes the fake's settings (role, lease, ...) under its lock.
func (f *fakeVault) set(change func(f *fakeVault)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(f)
}

func (f *fakeVault) loginBody() map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastLogin
}

// put adds a version as another writer (another replica, an admin's vault kv put) would.
func (f *fakeVault) put(data map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.versions = append(f.versions, fakeVersion{data: data})
}

func (f *fakeVault) deleteLatest() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.versions[len(f.versions)-1].deleted = true
}

// expireTokens makes every token Vault issued so far invalid, as its TTL ending would.
func (f *fakeVault) expireTokens() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.live)
}

func (f *fakeVault) setFailure(kind string, status int, errs ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail[kind] = fakeFailure{status: status, errors: errs}
}

func (f *fakeVault) clearFailure(kind string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.fail, kind)
}

func (f *fakeVault) count(kind string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[kind]
}

func (f *fakeVault) liveTokens() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.live)
}

func (f *fakeVault) latest() (map[string]any, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.versions) == 0 {
		return nil, 0
	}
	return f.versions[len(f.versions)-1].data, len(f.versions)
}

func (f *fakeVault) casOfLastWrite() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastCAS
}

// eventually waits for cond; the deadline only stops a test that would otherwise hang.
func eventually(t *testing.T, cond func() bool, msg string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", msg)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

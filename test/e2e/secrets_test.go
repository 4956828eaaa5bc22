package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	sidecarapp "github.com/warden-dev/warden/cmd/sidecar/app"
	"github.com/warden-dev/warden/internal/testing/testvault"
	"github.com/warden-dev/warden/pkg/cli"
	"github.com/warden-dev/warden/pkg/contract"
	"github.com/warden-dev/warden/pkg/sidecar"
)

// lockedBuffer collects a sidecar's logs while it runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type runningSidecar struct {
	url   string
	base  string
	logs  *lockedBuffer
	stop  func()
	audit string
}

// startSidecar runs a sidecar for a real pod (injected by the webhook) with its real token.
func startSidecar(t testing.TB, ns, sa, pod string, mut func(*sidecarapp.Options)) *runningSidecar {
	t.Helper()
	p, tok := podToken(t, ns, sa, pod, contract.TokenAudience)
	base := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(base, "share"), 0o755))
	tokFile := filepath.Join(base, "token")
	require.NoError(t, os.WriteFile(tokFile, []byte(tok), 0o600))
	logs := &lockedBuffer{}
	env := "prod"
	if ns == "ws" {
		env = "dev"
	}
	o := sidecarapp.Options{
		Listen: "127.0.0.1:0", Owner: ns + "/" + sa, Environment: env, Workload: contract.WorkloadApp,
		SnapshotRoot: filepath.Join(base, "share"), StagingRoot: filepath.Join(base, "staging"), StateDir: filepath.Join(base, "state"),
		PolicyFile: policyFile, TokenFile: tokFile,
		VaultAddr: vaultSrv.Addr, VaultCacheTTL: 30 * time.Second,
		AuditLog: filepath.Join(base, "audit.log"), Pod: p.Name,
		Log: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if mut != nil {
		mut(&o)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- sidecarapp.Run(ctx, o, ready) }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("sidecar did not start: %v", err)
	}
	var once sync.Once
	rs := &runningSidecar{url: "http://" + addr, base: base, logs: logs, audit: o.AuditLog}
	rs.stop = func() { once.Do(func() { cancel(); require.NoError(t, <-done) }) }
	t.Cleanup(rs.stop)
	return rs
}

func (rs *runningSidecar) call(t testing.TB, method, path, ifMatch string, body any) (int, http.Header, map[string]any) {
	t.Helper()
	h := http.Header{}
	if ifMatch != "" {
		h.Set("If-Match", ifMatch)
	}
	return rs.do(t, method, path, h, body)
}

// callAs calls the sidecar for a caller (X-Warden-Caller; "" for the owner itself).
func (rs *runningSidecar) callAs(t testing.TB, method, path, caller string, body any) (int, map[string]any) {
	t.Helper()
	h := http.Header{}
	if caller != "" {
		h.Set(sidecar.CallerHeader, caller)
	}
	code, _, out := rs.do(t, method, path, h, body)
	return code, out
}

func (rs *runningSidecar) do(t testing.TB, method, path string, h http.Header, body any) (int, http.Header, map[string]any) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		require.NoError(t, err)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, rs.url+path, rd)
	require.NoError(t, err)
	req.Header = h
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := map[string]any{}
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, resp.Header, out
}

func rootClient(t testing.TB) *vault.Client {
	c, err := vaultSrv.RootClient()
	require.NoError(t, err)
	return c
}

func TestSecretsRoundTrip(t *testing.T) {
	setup(t)
	sc := startSidecar(t, "apps", "svc-prod-app-1", "secrets-rt", nil)
	code, _, _ := sc.call(t, "GET", "/v1/secrets", "", nil)
	require.Equal(t, 200, code)

	code, hdr, _ := sc.call(t, "PUT", "/v1/secrets", "", map[string]string{"db-user": "report", "db-password": "s3cr3t-Pa55"})
	require.Equal(t, 204, code)
	v1 := hdr.Get("ETag")
	require.NotEmpty(t, v1)

	code, hdr, out := sc.call(t, "GET", "/v1/secrets", "", nil)
	require.Equal(t, 200, code)
	assert.Equal(t, []any{"db-password", "db-user"}, out["keys"])
	assert.Equal(t, v1, hdr.Get("ETag"))
	code, _, out = sc.call(t, "GET", "/v1/secrets/db-password", "", nil)
	require.Equal(t, 200, code)
	assert.Equal(t, map[string]any{"key": "db-password", "value": "s3cr3t-Pa55"}, out)
	code, _, out = sc.call(t, "GET", "/v1/secrets?all=true", "", nil)
	require.Equal(t, 200, code)
	assert.Equal(t, map[string]any{"db-user": "report", "db-password": "s3cr3t-Pa55"}, out)
	code, _, _ = sc.call(t, "GET", "/v1/secrets/missing", "", nil)
	assert.Equal(t, 404, code)
	code, _, _ = sc.call(t, "GET", "/v1/secrets/..%2Fx", "", nil)
	assert.Equal(t, 400, code)

	// Stored where the policy says: secret/data/warden/apps/svc-prod-app-1, as one KV v2 entry.
	kv, err := rootClient(t).KVv2("secret").Get(context.Background(), "warden/apps/svc-prod-app-1")
	require.NoError(t, err)
	assert.Equal(t, "report", kv.Data["db-user"])

	code, _, _ = sc.call(t, "DELETE", "/v1/secrets/db-user", "", nil)
	require.Equal(t, 204, code)
	code, _, out = sc.call(t, "GET", "/v1/secrets", "", nil)
	require.Equal(t, 200, code)
	assert.Equal(t, []any{"db-password"}, out["keys"])
	code, _, _ = sc.call(t, "DELETE", "/v1/secrets/db-user", "", nil)
	assert.Equal(t, 404, code)

	// Values of any JSON type, as the proposal's DataJobSecrets allows.
	code, _, _ = sc.call(t, "PUT", "/v1/secrets", "", []byte(`{"k":1,"o":{"a":[true,null]}}`))
	require.Equal(t, 204, code)
	code, _, out = sc.call(t, "GET", "/v1/secrets/o", "", nil)
	require.Equal(t, 200, code)
	assert.Equal(t, map[string]any{"a": []any{true, nil}}, out["value"])

	// Hostile bodies.
	for _, b := range []string{`{`, `[]`, `null`, `{"a":"b"}{"c":"d"}`, `{"bad key!":"x"}`, `{"k":nope}`} {
		code, _, _ := sc.call(t, "PUT", "/v1/secrets", "", []byte(b))
		assert.Equal(t, 400, code, b)
	}
	code, _, _ = sc.call(t, "POST", "/v1/secrets", "", nil)
	assert.Equal(t, 405, code)
}

func TestSecretsCheckAndSet(t *testing.T) {
	setup(t)
	a := startSidecar(t, "apps", "svc-prod-app-1", "cas-a", nil)
	b := startSidecar(t, "apps", "svc-prod-app-1", "cas-b", nil)
	code, hdr, _ := a.call(t, "PUT", "/v1/secrets", "", map[string]string{"token": "one"})
	require.Equal(t, 204, code)
	read := hdr.Get("ETag")

	// b has not seen a's write in its own cache yet, but reads fresh when its cache is empty.
	code, _, _ = b.call(t, "GET", "/v1/secrets?all=true", "", nil)
	require.Equal(t, 200, code)
	code, _, _ = b.call(t, "PUT", "/v1/secrets", read, map[string]string{"token": "two"})
	require.Equal(t, 204, code)

	// a writes against the version it read: refused, nothing lost.
	code, _, out := a.call(t, "PUT", "/v1/secrets", read, map[string]string{"token": "three"})
	assert.Equal(t, 409, code, out)
	// Without If-Match, a's last-seen version is used: still refused.
	code, _, _ = a.call(t, "PUT", "/v1/secrets", "", map[string]string{"token": "three"})
	assert.Equal(t, 409, code)
	kv, err := rootClient(t).KVv2("secret").Get(context.Background(), "warden/apps/svc-prod-app-1")
	require.NoError(t, err)
	assert.Equal(t, "two", kv.Data["token"], "the other writer's value survives")
	code, _, _ = a.call(t, "DELETE", "/v1/secrets/token", read, nil)
	assert.Equal(t, 409, code)
	code, _, _ = a.call(t, "PUT", "/v1/secrets", `"vbogus"`, map[string]string{"token": "x"})
	assert.Equal(t, 400, code)
}

func TestSecretsSizeLimit(t *testing.T) {
	setup(t)
	sc := startSidecar(t, "apps", "svc-prod-app-1", "size", nil)
	// {"k":"<v>"} is 8 bytes of JSON around the value.
	exact := map[string]string{"k": strings.Repeat("x", 1<<20-8)}
	code, _, out := sc.call(t, "PUT", "/v1/secrets", "", exact)
	require.Equal(t, 204, code, "exactly 1 MiB is accepted: %v", out)
	over := map[string]string{"k": strings.Repeat("x", 1<<20-7)}
	code, _, out = sc.call(t, "PUT", "/v1/secrets", "", over)
	assert.Equal(t, 413, code, "1 MiB + 1 is refused: %v", out)
	code, _, _ = sc.call(t, "PUT", "/v1/secrets", "", []byte(`{"k":"`+strings.Repeat("y", 3<<20)+`"}`))
	assert.Equal(t, 413, code, "a body far over the limit is cut off unread")
}

func TestSecretsOtherOwnerIsForbidden(t *testing.T) {
	setup(t)
	// Misconfigured path: apps/svc-prod-app-1 logs in with its own role, but asks for ws/user-ds-1's entry.
	wrong := startSidecar(t, "apps", "svc-prod-app-1", "wrong-path", func(o *sidecarapp.Options) { o.VaultPath = "warden/ws/user-ds-1" })
	code, _, out := wrong.call(t, "GET", "/v1/secrets", "", nil)
	assert.Equal(t, 403, code, out)
	code, _, _ = wrong.call(t, "PUT", "/v1/secrets", "", map[string]string{"a": "b"})
	assert.Equal(t, 403, code)
	// Another owner's role: Vault refuses the login, so nothing is reachable.
	role := startSidecar(t, "apps", "svc-prod-app-1", "wrong-role", func(o *sidecarapp.Options) { o.VaultRole = "warden-ws-user-ds-1" })
	code, _, out = role.call(t, "GET", "/v1/secrets", "", nil)
	assert.Equal(t, 403, code, out)
}

func TestSecretsNotConfigured(t *testing.T) {
	setup(t)
	sc := startSidecar(t, "apps", "svc-prod-app-1", "no-vault", func(o *sidecarapp.Options) { o.VaultAddr = "" })
	code, _, out := sc.call(t, "GET", "/v1/secrets", "", nil)
	assert.Equal(t, 501, code)
	assert.Contains(t, out["error"], "--vault-addr")
}

func TestSecretsOutage(t *testing.T) {
	setup(t)
	proxy, err := testvault.NewProxy(vaultSrv.Addr)
	require.NoError(t, err)
	defer proxy.Close()
	sc := startSidecar(t, "apps", "svc-prod-app-1", "outage", func(o *sidecarapp.Options) {
		o.VaultAddr = proxy.Addr
		o.VaultCacheTTL = 2 * time.Second
	})
	code, _, _ := sc.call(t, "PUT", "/v1/secrets", "", map[string]string{"api-key": "k-123"})
	require.Equal(t, 204, code)

	proxy.Cut()
	code, _, out := sc.call(t, "GET", "/v1/secrets/api-key", "", nil)
	assert.Equal(t, 200, code, "served from the cache while Vault is away")
	assert.Equal(t, "k-123", out["value"])
	require.Eventually(t, func() bool {
		code, _, _ := sc.call(t, "GET", "/v1/secrets/api-key", "", nil)
		return code == 503
	}, 30*time.Second, 100*time.Millisecond, "503 once the cached copy is older than its TTL")
	code, _, out = sc.call(t, "PUT", "/v1/secrets", "", map[string]string{"api-key": "k-456"})
	assert.Equal(t, 503, code, out)

	proxy.Restore()
	require.Eventually(t, func() bool {
		code, _, out := sc.call(t, "GET", "/v1/secrets/api-key", "", nil)
		return code == 200 && out["value"] == "k-123"
	}, 30*time.Second, 100*time.Millisecond, "recovers when Vault is back")
}

// The role's token TTL is 8 s (see configureVault): the sidecar must renew it, and revoke it
// when it stops. Vault itself is asked, by accessor.
func TestSecretsTokenRenewedAndRevoked(t *testing.T) {
	setup(t)
	sc := startSidecar(t, "apps", "svc-prod-app-1", "renewal", nil)
	code, _, _ := sc.call(t, "GET", "/v1/secrets", "", nil)
	require.Equal(t, 200, code)
	root := rootClient(t)
	// The sidecar logs its token's accessor (never the token) when it logs in.
	var accessor string
	for _, line := range strings.Split(sc.logs.String(), "\n") {
		var rec struct{ Msg, Accessor string }
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "logged in to vault" {
			accessor = rec.Accessor
		}
	}
	require.NotEmpty(t, accessor)
	lastRenewal := func() string {
		sec, err := root.Auth().Token().LookupAccessor(accessor)
		if err != nil {
			return "gone: " + err.Error()
		}
		last, _ := sec.Data["last_renewal_time"].(json.Number)
		return string(last)
	}
	first := lastRenewal()
	require.NotContains(t, first, "gone")
	// The token lives 8 s; it is still alive, and renewed again, well past that.
	require.Eventually(t, func() bool {
		now := lastRenewal()
		require.NotContains(t, now, "gone", "the token expired: renewal did not happen")
		return now != "" && now != first
	}, 30*time.Second, 250*time.Millisecond, "the token was renewed")
	sc.stop()
	_, err := root.Auth().Token().LookupAccessor(accessor)
	assert.Error(t, err, "the token is revoked when the sidecar stops")
}

func TestSecretValuesNeverLogged(t *testing.T) {
	setup(t)
	sc := startSidecar(t, "apps", "svc-prod-app-1", "no-leak", nil)
	const value = "VALUE-MUST-NOT-LEAK-7f3a"
	code, _, _ := sc.call(t, "PUT", "/v1/secrets", "", map[string]string{"leak-test": value, "other": value + "-2"})
	require.Equal(t, 204, code)
	sc.call(t, "GET", "/v1/secrets/leak-test", "", nil)
	sc.call(t, "GET", "/v1/secrets?all=true", "", nil)
	sc.call(t, "PUT", "/v1/secrets", `"v1"`, map[string]string{"leak-test": value + "-conflict"})
	sc.call(t, "DELETE", "/v1/secrets/leak-test", "", nil)
	sc.stop()
	audit, err := os.ReadFile(sc.audit)
	require.NoError(t, err)
	logs := sc.logs.String()
	assert.Contains(t, string(audit), `"action":"secret-get"`, "reads are audited")
	assert.Contains(t, string(audit), `"source":"leak-test"`, "by key")
	for name, text := range map[string]string{"audit log": string(audit), "sidecar log": logs} {
		assert.NotContains(t, text, value, "%s holds a secret value", name)
		assert.NotContains(t, text, "hvs.", "%s holds a Vault token", name)
	}
}

// The `warden secrets` CLI, as a user in a workspace terminal would run it.
func TestSecretsCLI(t *testing.T) {
	setup(t)
	sc := startSidecar(t, "ws", "user-ds-1", "cli", nil)
	run := func(stdin string, args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := cli.Run(append([]string{"secrets", "--url", sc.url}, args...), strings.NewReader(stdin), &out, &errOut)
		return out.String(), err
	}
	file := filepath.Join(t.TempDir(), "all.json")
	require.NoError(t, os.WriteFile(file, []byte(`{"a":"1","b":"2"}`), 0o600))
	_, err := run("", "--overwrite-all", file)
	require.NoError(t, err)
	_, err = run("hunter2\n", "--set", "password")
	require.NoError(t, err)
	out, err := run("", "--list")
	require.NoError(t, err)
	assert.Equal(t, "a\nb\npassword\n", out)
	out, err = run("", "--get", "password")
	require.NoError(t, err)
	assert.Equal(t, "hunter2\n", out)
	out, err = run("", "--list", "--show-secrets")
	require.NoError(t, err)
	assert.Equal(t, "a=1\nb=2\npassword=hunter2\n", out)
	_, err = run("", "--delete", "a")
	require.NoError(t, err)
	_, err = run("", "--get", "a")
	assert.ErrorContains(t, err, "404")
	_, err = run("", "--get", "a", "--delete", "b")
	assert.ErrorContains(t, err, "exactly one")
	require.NoError(t, os.WriteFile(file, []byte(`["not","an","object"]`), 0o600))
	_, err = run("", "--overwrite-all", file)
	assert.ErrorContains(t, err, "JSON object")
}

// A token Vault no longer honours (revoked by an operator, or expired while Vault was away) is
// replaced by a fresh login, without the app seeing an error.
func TestSecretsLoginAgainAfterRevocation(t *testing.T) {
	setup(t)
	sc := startSidecar(t, "apps", "svc-prod-app-1", "relogin", func(o *sidecarapp.Options) { o.VaultCacheTTL = 0 })
	code, _, _ := sc.call(t, "PUT", "/v1/secrets", "", map[string]string{"k": "v"})
	require.Equal(t, 204, code)
	accessors := func() []string {
		var out []string
		for _, line := range strings.Split(sc.logs.String(), "\n") {
			var rec struct{ Msg, Accessor string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "logged in to vault" {
				out = append(out, rec.Accessor)
			}
		}
		return out
	}
	first := accessors()
	require.Len(t, first, 1)
	_, err := rootClient(t).Logical().Write("auth/token/revoke-accessor", map[string]any{"accessor": first[0]})
	require.NoError(t, err)
	code, _, out := sc.call(t, "GET", "/v1/secrets/k", "", nil)
	require.Equal(t, 200, code, out)
	assert.Equal(t, "v", out["value"])
	assert.GreaterOrEqual(t, len(accessors()), 2, "logged in again")
}

package secrets

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clocktesting "k8s.io/utils/clock/testing"
)

// newStore starts a Store against the fake, with the projected token in a file as the kubelet
// writes it (with a trailing newline).
func newStore(t *testing.T, f *fakeVault, mut ...func(*Config)) *Store {
	t.Helper()
	tokenFile := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte(testJWT+"\n"), 0o600))
	cfg := Config{Addr: f.srv.URL, Role: testRole, Path: testPath, TokenFile: tokenFile, CacheTTL: time.Minute}
	for _, m := range mut {
		m(&cfg)
	}
	s, err := New(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	return s
}

func noCache(c *Config) { c.CacheTTL = 0 }

// withClock puts s on a fake clock and reads once, so the cache's age starts at zero on it.
func withClock(t *testing.T, s *Store) *clocktesting.FakeClock {
	t.Helper()
	c := clocktesting.NewFakeClock(time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC))
	s.now = c.Now
	_, _, err := s.read(context.Background(), true)
	require.NoError(t, err)
	return c
}

func TestValidKey(t *testing.T) {
	for _, tc := range []struct {
		key string
		ok  bool
	}{
		{"password", true},
		{"db.password_2-prod", true},
		{"0", true},
		{strings.Repeat("k", 256), true},
		{strings.Repeat("k", 257), false},
		{"", false},
		{".hidden", false},
		{"-flag", false},
		{"a/b", false},
		{"a b", false},
		{"ключ", false},
	} {
		err := ValidKey(tc.key)
		if tc.ok {
			assert.NoError(t, err, tc.key)
		} else {
			assert.ErrorIs(t, err, ErrBadKey, tc.key)
		}
	}
}

func TestPathForAndDefaultRole(t *testing.T) {
	for _, tc := range []struct {
		template, owner, want string
	}{
		{"warden/{namespace}/{owner}", "apps/svc-prod-app-1", "warden/apps/svc-prod-app-1"},
		{"teams/{namespace}", "apps/svc", "teams/apps"},
		{"warden/{namespace}/{owner}", "apps", ""},          // not NAMESPACE/NAME
		{"warden//{owner}", "apps/svc", ""},                 // empty segment
		{"warden/{namespace}/../{owner}", "apps/svc", ""},   // leaves the template's folder
		{"warden/{namespace}/{owner}/", "apps/svc", ""},     // trailing slash
		{"warden/{namespace}/{owner}", "apps/.hidden", ""},  // a name that is not a segment
		{"warden/{namespace}/{owner}", "apps/svc?x=1", ""},  // query characters
		{"warden/{namespace}/{owner}", "apps/svc%2f..", ""}, // escapes
		{"warden/{namespace}/{owner}", "../etc/passwd", ""}, // traversal in the namespace
		{"/warden/{namespace}/{owner}", "apps/svc", ""},     // leading slash
		{"secret/{namespace}-{owner}", "apps/svc", "secret/apps-svc"},
	} {
		got, err := PathFor(tc.template, tc.owner)
		if tc.want == "" {
			assert.Error(t, err, "%s with %s", tc.template, tc.owner)
			continue
		}
		require.NoError(t, err, "%s with %s", tc.template, tc.owner)
		assert.Equal(t, tc.want, got)
	}
	assert.Equal(t, "warden-apps-svc-prod-app-1", DefaultRole("apps/svc-prod-app-1"))
}

func TestNewNeedsAddrRolePathAndToken(t *testing.T) {
	full := Config{Addr: "http://127.0.0.1:1", Role: "r", Path: "p", TokenFile: "/t"}
	for name, mut := range map[string]func(*Config){
		"address":    func(c *Config) { c.Addr = "" },
		"role":       func(c *Config) { c.Role = "" },
		"path":       func(c *Config) { c.Path = "" },
		"token file": func(c *Config) { c.TokenFile = "" },
		"CA file":    func(c *Config) { c.CACert = "/does/not/exist.pem" },
	} {
		cfg := full
		mut(&cfg)
		_, err := New(context.Background(), cfg)
		assert.Error(t, err, name)
	}
}

func TestNewLogsInAndLoadsOnce(t *testing.T) {
	f := newFakeVault(t)
	f.put(map[string]any{"password": "hunter2", "user": "app"})
	s := newStore(t, f)

	assert.Equal(t, map[string]any{"role": testRole, "jwt": testJWT}, f.loginBody(), "the token file's newline is not part of the JWT")
	assert.Equal(t, "accessor-1", s.Accessor())
	assert.Equal(t, 1, f.count(callRead), "loaded at start")

	ctx := context.Background()
	keys, v, err := s.Keys(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"password", "user"}, keys)
	assert.Equal(t, 1, v)
	val, _, err := s.Get(ctx, "password")
	require.NoError(t, err)
	assert.JSONEq(t, `"hunter2"`, string(val))
	all, _, err := s.All(ctx)
	require.NoError(t, err)
	assert.Equal(t, Strings(map[string]string{"password": "hunter2", "user": "app"}), all)
	assert.Equal(t, 1, f.count(callRead), "every read served from the cache")

	all["password"] = json.RawMessage(`"changed by the caller"`)
	again, _, err := s.All(ctx)
	require.NoError(t, err)
	assert.JSONEq(t, `"hunter2"`, string(again["password"]), "callers get copies, not the cache")

	_, _, err = s.Get(ctx, "missing")
	assert.ErrorIs(t, err, ErrNotFound)
	_, _, err = s.Get(ctx, "../x")
	assert.ErrorIs(t, err, ErrBadKey)
}

func TestNamespaceOnEveryRequest(t *testing.T) {
	f := newFakeVault(t)
	f.set(func(f *fakeVault) { f.namespace = "team-a" })
	s := newStore(t, f, noCache, func(c *Config) { c.Namespace = "team-a" })
	_, err := s.SetAll(context.Background(), Strings(map[string]string{"k": "v"}), nil)
	require.NoError(t, err)
	_, _, err = s.Get(context.Background(), "k")
	require.NoError(t, err)
	require.NoError(t, s.Close(context.Background()))
	// The fake refuses, and the cleanup reports, any request without the namespace.
}

func TestNothingWrittenYet(t *testing.T) {
	f := newFakeVault(t)
	s := newStore(t, f, noCache)
	keys, v, err := s.Keys(context.Background())
	require.NoError(t, err)
	assert.Empty(t, keys)
	assert.Zero(t, v)
	assert.Positive(t, f.count(callMetadata), "the version to write on top of is looked up in the metadata")

	v, err = s.SetAll(context.Background(), Strings(map[string]string{"k": "v"}), nil)
	require.NoError(t, err)
	assert.Equal(t, 1, v)
	assert.Zero(t, f.casOfLastWrite(), "the first write checks that nothing exists")
}

func TestValuesWrittenByOtherTools(t *testing.T) {
	f := newFakeVault(t)
	f.put(map[string]any{"s": "text", "n": 3, "obj": map[string]any{"a": true}, "list": []any{"x", 1}})
	s := newStore(t, f)
	all, _, err := s.All(context.Background())
	require.NoError(t, err)
	assert.Equal(t, Values{"s": json.RawMessage(`"text"`), "n": json.RawMessage(`3`), "obj": json.RawMessage(`{"a":true}`), "list": json.RawMessage(`["x",1]`)}, all,
		"values of any JSON type come back as the JSON they are")
}

// Values of any JSON type round-trip exactly (the proposal's additionalProperties of any
// type): numbers keep their digits, objects and lists their shape; delete-all empties the entry.
func TestJSONValuesAndDeleteAll(t *testing.T) {
	f := newFakeVault(t)
	s := newStore(t, f, noCache)
	ctx := context.Background()
	in := Values{"port": json.RawMessage(`5432`), "big": json.RawMessage(`12345678901234567890`), "ratio": json.RawMessage(`0.1`),
		"tls": json.RawMessage(`{"verify":true,"ca":null}`), "hosts": json.RawMessage(`["a","b"]`), "user": json.RawMessage(`"app"`)}
	v, err := s.SetAll(ctx, in, nil)
	require.NoError(t, err)
	all, _, err := s.All(ctx)
	require.NoError(t, err)
	for k, want := range in {
		assert.JSONEq(t, string(want), string(all[k]), k)
	}
	assert.Equal(t, "12345678901234567890", string(all["big"]), "no float64 rounding")

	_, err = s.SetAll(ctx, Values{"bad": json.RawMessage(`{nope`)}, nil)
	assert.ErrorIs(t, err, ErrBadValue)

	stale := v - 1
	_, err = s.DeleteAll(ctx, &stale)
	assert.ErrorIs(t, err, ErrConflict, "delete-all is check-and-set too")
	v2, err := s.DeleteAll(ctx, &v)
	require.NoError(t, err)
	assert.Equal(t, v+1, v2)
	keys, _, err := s.Keys(ctx)
	require.NoError(t, err)
	assert.Empty(t, keys)
	_, err = s.DeleteAll(ctx, nil)
	assert.NoError(t, err, "nothing to delete is no error")
}

func TestDeletedLatestVersion(t *testing.T) {
	f := newFakeVault(t)
	f.put(map[string]any{"old": "1"})
	f.put(map[string]any{"old": "2"})
	f.deleteLatest() // vault kv delete, outside Warden
	s := newStore(t, f, noCache)
	all, v, err := s.All(context.Background())
	require.NoError(t, err)
	assert.Empty(t, all)
	assert.Equal(t, 2, v, "the deleted version is still the one to write on top of")
	v, err = s.SetAll(context.Background(), Strings(map[string]string{"new": "x"}), nil)
	require.NoError(t, err)
	assert.Equal(t, 3, v)
	assert.Equal(t, 2, f.casOfLastWrite())
}

// TestReadStatusMapping: what the sidecar answers depends on these sentinels.
func TestReadStatusMapping(t *testing.T) {
	for _, tc := range []struct {
		name   string
		kind   string
		status int
		errs   []string
		want   error // nil: an error that is none of the sentinels
		calls  int   // requests of kind the read makes
	}{
		{"policy refuses the path", callRead, 403, []string{"permission denied"}, ErrForbidden, 2},
		{"unauthorized", callRead, 401, []string{"missing client token"}, ErrForbidden, 2},
		{"internal error", callRead, 500, []string{"internal error"}, ErrUnavailable, 2},
		{"sealed", callRead, 503, []string{"Vault is sealed"}, ErrUnavailable, 2},
		{"bad request", callRead, 400, []string{"invalid request"}, nil, 1},
		{"metadata refused", callMetadata, 403, []string{"permission denied"}, ErrForbidden, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeVault(t)
			s := newStore(t, f, noCache)
			before, logins := f.count(tc.kind), f.count(callLogin)
			f.setFailure(tc.kind, tc.status, tc.errs...)
			_, _, err := s.Get(context.Background(), "k")
			require.Error(t, err)
			if tc.want != nil {
				assert.ErrorIs(t, err, tc.want)
			} else {
				for _, sentinel := range []error{ErrForbidden, ErrUnavailable, ErrConflict, ErrNotFound, ErrTooLarge, ErrBadKey, ErrNotConfigured} {
					assert.NotErrorIs(t, err, sentinel)
				}
				assert.Contains(t, err.Error(), "400")
			}
			assert.Equal(t, tc.calls, f.count(tc.kind)-before,
				"a refused token earns one fresh login and one retry; a 5xx one retry by the client; nothing else is retried")
			if errors.Is(tc.want, ErrForbidden) {
				assert.Equal(t, 1, f.count(callLogin)-logins, "one fresh login, not a loop")
			}
		})
	}
}

func TestOutageIsUnavailable(t *testing.T) {
	t.Parallel()
	f := newFakeVault(t)
	s := newStore(t, f, noCache)
	f.srv.Close()
	_, _, err := s.Get(context.Background(), "k")
	assert.ErrorIs(t, err, ErrUnavailable)
	_, err = s.SetAll(context.Background(), Strings(map[string]string{"k": "v"}), nil)
	assert.ErrorIs(t, err, ErrUnavailable)
}

func TestWriteStatusMapping(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		errs   []string
		want   error
	}{
		{"check-and-set mismatch", 400, []string{"check-and-set parameter did not match the current version"}, ErrConflict},
		{"policy refuses writes", 403, []string{"permission denied"}, ErrForbidden},
		{"sealed", 503, []string{"Vault is sealed"}, ErrUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeVault(t)
			s := newStore(t, f)
			f.setFailure(callWrite, tc.status, tc.errs...)
			_, err := s.SetAll(context.Background(), Strings(map[string]string{"k": "v"}), nil)
			assert.ErrorIs(t, err, tc.want)
		})
	}
}

func TestExpiredTokenLogsInAgainOnce(t *testing.T) {
	f := newFakeVault(t)
	f.put(map[string]any{"k": "v"})
	s := newStore(t, f, noCache)
	f.expireTokens()
	val, _, err := s.Get(context.Background(), "k")
	require.NoError(t, err)
	assert.JSONEq(t, `"v"`, string(val))
	assert.Equal(t, 2, f.count(callLogin))
	assert.Equal(t, "accessor-2", s.Accessor())
}

func TestCheckAndSet(t *testing.T) {
	ctx := context.Background()
	t.Run("a write on top of what was read succeeds and refreshes the cache", func(t *testing.T) {
		f := newFakeVault(t)
		f.put(map[string]any{"a": "1"})
		s := newStore(t, f)
		_, v, err := s.All(ctx)
		require.NoError(t, err)
		nv, err := s.SetAll(ctx, Strings(map[string]string{"a": "1", "b": "2"}), &v)
		require.NoError(t, err)
		assert.Equal(t, 2, nv)
		assert.Equal(t, 1, f.casOfLastWrite())
		reads := f.count(callRead)
		all, got, err := s.All(ctx)
		require.NoError(t, err)
		assert.Equal(t, Strings(map[string]string{"a": "1", "b": "2"}), all)
		assert.Equal(t, 2, got)
		assert.Equal(t, reads, f.count(callRead), "the write's result is cached")
		data, _ := f.latest()
		assert.Equal(t, map[string]any{"a": "1", "b": "2"}, data)
	})
	t.Run("a stale if-version conflicts", func(t *testing.T) {
		f := newFakeVault(t)
		f.put(map[string]any{"a": "1"})
		s := newStore(t, f)
		f.put(map[string]any{"a": "other writer"})
		stale := 1
		_, err := s.SetAll(ctx, Strings(map[string]string{"a": "mine"}), &stale)
		require.ErrorIs(t, err, ErrConflict)
		data, v := f.latest()
		assert.Equal(t, "other writer", data["a"], "the other writer's change survives")
		assert.Equal(t, 2, v)
	})
	t.Run("a blind write conflicts until the caller reads again", func(t *testing.T) {
		f := newFakeVault(t)
		f.put(map[string]any{"a": "1"})
		s := newStore(t, f) // caches version 1
		f.put(map[string]any{"a": "other writer"})
		_, err := s.SetAll(ctx, Strings(map[string]string{"a": "mine"}), nil)
		require.ErrorIs(t, err, ErrConflict)
		_, err = s.SetAll(ctx, Strings(map[string]string{"a": "mine"}), nil)
		require.ErrorIs(t, err, ErrConflict, "retrying without reading does not overwrite")
		reads := f.count(callRead)
		all, v, err := s.All(ctx)
		require.NoError(t, err)
		assert.Equal(t, reads+1, f.count(callRead), "after a conflict the next read goes to Vault, cache TTL or not")
		assert.JSONEq(t, `"other writer"`, string(all["a"]))
		assert.Equal(t, 2, v)
		nv, err := s.SetAll(ctx, Strings(map[string]string{"a": "mine"}), nil)
		require.NoError(t, err)
		assert.Equal(t, 3, nv)
	})
	t.Run("a blind write before any read checks against Vault's version", func(t *testing.T) {
		f := newFakeVault(t)
		f.put(map[string]any{"a": "1"})
		f.put(map[string]any{"a": "2"})
		f.setFailure(callRead, 403, "permission denied")
		s := newStore(t, f) // the load at start fails: nothing cached
		f.clearFailure(callRead)
		v, err := s.SetAll(ctx, Strings(map[string]string{"a": "3"}), nil)
		require.NoError(t, err)
		assert.Equal(t, 3, v)
		assert.Equal(t, 2, f.casOfLastWrite(), "not 0, which would fail, nor a write without check-and-set")
	})
}

func TestDelete(t *testing.T) {
	ctx := context.Background()
	f := newFakeVault(t)
	f.put(map[string]any{"a": "1", "b": "2"})
	s := newStore(t, f)

	_, err := s.Delete(ctx, "a/..", nil)
	assert.ErrorIs(t, err, ErrBadKey)
	_, err = s.Delete(ctx, "missing", nil)
	assert.ErrorIs(t, err, ErrNotFound)
	stale := 0
	_, err = s.Delete(ctx, "a", &stale)
	assert.ErrorIs(t, err, ErrConflict)
	assert.Zero(t, f.count(callWrite), "refusals write nothing")

	reads := f.count(callRead)
	v, err := s.Delete(ctx, "a", nil)
	require.NoError(t, err)
	assert.Equal(t, reads+1, f.count(callRead), "a delete reads Vault, not the cache, so it removes from the latest version")
	assert.Equal(t, 2, v)
	assert.Equal(t, 1, f.casOfLastWrite())
	data, _ := f.latest()
	assert.Equal(t, map[string]any{"b": "2"}, data)
}

func TestSizeLimit(t *testing.T) {
	ctx := context.Background()
	small := Strings(map[string]string{"k": strings.Repeat("x", 20)})
	b, err := json.Marshal(small)
	require.NoError(t, err)
	f := newFakeVault(t)
	s := newStore(t, f, func(c *Config) { c.MaxBytes = len(b) })
	_, err = s.SetAll(ctx, small, nil)
	require.NoError(t, err, "exactly at the limit")

	_, err = s.SetAll(ctx, Strings(map[string]string{"k": strings.Repeat("x", 21)}), nil)
	assert.ErrorIs(t, err, ErrTooLarge)
	_, err = s.SetAll(ctx, Strings(map[string]string{"k": "v", "bad key": "v"}), nil)
	assert.ErrorIs(t, err, ErrBadKey)
	assert.Equal(t, 1, f.count(callWrite), "refused writes never reach Vault")

	f2 := newFakeVault(t)
	s2 := newStore(t, f2) // MaxBytes unset: the default
	_, err = s2.SetAll(ctx, Strings(map[string]string{"k": strings.Repeat("x", DefaultMaxBytes)}), nil)
	assert.ErrorIs(t, err, ErrTooLarge)
}

func TestCacheTTL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFakeVault(t)
	f.put(map[string]any{"k": "old"})
	s := newStore(t, f) // CacheTTL one minute
	clock := withClock(t, s)
	f.put(map[string]any{"k": "new"})

	clock.Step(time.Minute - time.Nanosecond)
	val, _, err := s.Get(ctx, "k")
	require.NoError(t, err)
	assert.JSONEq(t, `"old"`, string(val), "fresh: served from the cache")

	clock.Step(time.Nanosecond)
	val, _, err = s.Get(ctx, "k")
	require.NoError(t, err)
	assert.JSONEq(t, `"new"`, string(val), "a CacheTTL old: read from Vault")

	// The cache also carries reads through an outage, for as long as it is fresh.
	f.setFailure(callRead, 503, "Vault is sealed")
	clock.Step(time.Minute - time.Nanosecond)
	val, _, err = s.Get(ctx, "k")
	require.NoError(t, err)
	assert.JSONEq(t, `"new"`, string(val))
	clock.Step(time.Nanosecond)
	_, _, err = s.Get(ctx, "k")
	assert.ErrorIs(t, err, ErrUnavailable)
}

func TestLoginFailsAtStart(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(*fakeVault, *Config)
		want  error
		text  string
	}{
		{"role not bound to the service account", func(f *fakeVault, _ *Config) { f.set(func(f *fakeVault) { f.role = "another-role" }) }, ErrForbidden, "vault login"},
		{"vault down", func(f *fakeVault, _ *Config) { f.setFailure(callLogin, 503, "Vault is sealed") }, ErrUnavailable, "vault login"},
		{"no token file", func(_ *fakeVault, c *Config) { c.TokenFile = "/nonexistent/token" }, ErrUnavailable, "service-account token"},
		{"login without a token", func(f *fakeVault, _ *Config) { f.setFailure(callLogin, 200) }, ErrUnavailable, "without a token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeVault(t)
			s := newStore(t, f, func(c *Config) { tc.setup(f, c) })
			_, _, err := s.Get(context.Background(), "k")
			assert.ErrorIs(t, err, tc.want)
			assert.ErrorContains(t, err, tc.text)
			assert.Zero(t, f.count(callRead), "no KV call without a token")
		})
	}
}

func TestLoginRecoversAfterFailedStart(t *testing.T) {
	t.Parallel()
	f := newFakeVault(t)
	f.put(map[string]any{"k": "v"})
	f.setFailure(callLogin, 503, "Vault is sealed")
	s := newStore(t, f, noCache)
	f.clearFailure(callLogin)
	eventually(t, func() bool { return s.Accessor() != "" }, "a login after the backoff")
	val, _, err := s.Get(context.Background(), "k")
	require.NoError(t, err)
	assert.JSONEq(t, `"v"`, string(val))
}

// TestTokenLifecycle: these wait for the token watcher's real timers, about a second each (the
// shortest lease Vault can express).
func TestTokenLifecycle(t *testing.T) {
	for _, tc := range []struct {
		name        string
		renewable   bool
		renewFails  []any // status, errors...
		wantRelogin bool
	}{
		{"renewed while Vault allows it", true, nil, false},
		{"renewal refused: logs in again", true, []any{403, "permission denied"}, true},
		{"renewal failing: logs in again before the token runs out", true, []any{500, "internal error"}, true},
		{"token not renewable: logs in again before it expires", false, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeVault(t)
			f.set(func(f *fakeVault) { f.lease, f.renewable = 1, tc.renewable })
			if tc.renewFails != nil {
				f.setFailure(callRenew, tc.renewFails[0].(int), tc.renewFails[1].(string))
			}
			s := newStore(t, f)
			if !tc.wantRelogin {
				eventually(t, func() bool { return f.count(callRenew) >= 2 }, "renewals")
				assert.Equal(t, 1, f.count(callLogin), "a renewed token needs no new login")
				assert.Equal(t, "accessor-1", s.Accessor())
				return
			}
			eventually(t, func() bool { return s.Accessor() == "accessor-2" }, "a second login")
			if !tc.renewable {
				assert.Zero(t, f.count(callRenew), "a token that cannot be renewed is not tried")
			}
		})
	}
}

func TestCloseRevokes(t *testing.T) {
	t.Run("the token is revoked", func(t *testing.T) {
		f := newFakeVault(t)
		s := newStore(t, f)
		require.Equal(t, 1, f.liveTokens())
		require.NoError(t, s.Close(context.Background()))
		assert.Equal(t, 1, f.count(callRevoke))
		assert.Zero(t, f.liveTokens(), "a stopped pod leaves no live Vault token")
		require.NoError(t, s.Close(context.Background()), "closing twice is harmless")
		assert.Equal(t, 1, f.count(callRevoke))
	})
	t.Run("never logged in: nothing to revoke", func(t *testing.T) {
		f := newFakeVault(t)
		f.set(func(f *fakeVault) { f.role = "another-role" })
		s := newStore(t, f)
		require.NoError(t, s.Close(context.Background()))
		assert.Zero(t, f.count(callRevoke))
	})
	t.Run("a failed revocation is reported", func(t *testing.T) {
		f := newFakeVault(t)
		s := newStore(t, f)
		f.setFailure(callRevoke, 403, "permission denied")
		err := s.Close(context.Background())
		assert.ErrorContains(t, err, "revoking vault token")
	})
}

// ValidKey and PathFor's segments accept exactly what the expressions they replaced did.
func FuzzKeyAndPathShapes(f *testing.F) {
	key := regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,255}$`)
	segment := regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	for _, s := range []string{"db-password", ".env", "a", "", strings.Repeat("k", 256), strings.Repeat("k", 257), "a/b", "a//b", "warden/{namespace}/{owner}", "x/../y", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := ValidKey(s) == nil, key.MatchString(s); got != want {
			t.Errorf("ValidKey(%q) accepts %v, the expression %v", s, got, want)
		}
		want := true
		for _, seg := range strings.Split(s, "/") {
			want = want && segment.MatchString(seg)
		}
		if _, err := PathFor(s, "apps/bench"); (err == nil) != want && !strings.Contains(s, "{") {
			t.Errorf("PathFor(%q) accepts %v, the expression %v", s, err == nil, want)
		}
	})
}

// Package secrets is the sidecar's door to Vault: it logs in with the Kubernetes auth method
// using the pod's projected service-account token, keeps the Vault token renewed (and logs in
// again when renewal is refused), revokes it on shutdown, and reads and writes the owner's
// secrets as one KV v2 entry. App code never holds a Vault token.
package secrets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	vault "github.com/hashicorp/vault/api"
)

// Errors, each one HTTP status in the sidecar.
var (
	ErrNotConfigured = errors.New("secrets are not enabled: this sidecar has no Vault (start it with --vault-addr, or ask the cluster admin to set the webhook's --vault-addr)")
	ErrNotFound      = errors.New("secret not found")
	ErrConflict      = errors.New("secrets changed since they were read")
	ErrTooLarge      = errors.New("secrets too large")
	ErrForbidden     = errors.New("vault refused access")
	ErrUnavailable   = errors.New("vault unavailable")
	ErrBadKey        = errors.New("bad secret key")
)

// DefaultMaxBytes is the size limit of all of an owner's secrets together (the proposal's 1 MiB).
const DefaultMaxBytes = 1 << 20

// Config of a Store.
type Config struct {
	Addr      string
	Role      string
	AuthPath  string // mount of the Kubernetes auth method, default "kubernetes"
	Mount     string // KV v2 mount, default "secret"
	Path      string // the owner's entry under the mount
	TokenFile string // projected service-account token
	CACert    string // PEM file to verify Vault, optional
	Namespace string // Vault Enterprise namespace, optional
	CacheTTL  time.Duration
	MaxBytes  int
	Log       *slog.Logger
}

var (
	keyRe     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,255}$`)
	segmentRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
)

// ValidKey checks a secret name: letters, digits, '.', '_', '-', at most 256.
func ValidKey(k string) error {
	if !keyRe.MatchString(k) {
		return fmt.Errorf("%w: %q must be 1-256 letters, digits, '.', '_' or '-', starting with a letter or digit", ErrBadKey, k)
	}
	return nil
}

// PathFor fills a path template: {namespace} and {owner} (the service account's name).
func PathFor(template, owner string) (string, error) {
	ns, sa, ok := strings.Cut(owner, "/")
	if !ok {
		return "", fmt.Errorf("owner %q is not NAMESPACE/NAME", owner)
	}
	p := strings.NewReplacer("{namespace}", ns, "{owner}", sa).Replace(template)
	for _, seg := range strings.Split(p, "/") {
		if !segmentRe.MatchString(seg) {
			return "", fmt.Errorf("vault path %q (from %q) has an empty, '.'/'..' or unusual segment", p, template)
		}
	}
	return p, nil
}

// DefaultRole is the Vault role of an owner when none is given: warden-NAMESPACE-NAME.
func DefaultRole(owner string) string {
	return "warden-" + strings.ReplaceAll(owner, "/", "-")
}

// Store reads and writes one owner's secrets.
type Store struct {
	cfg    Config
	log    *slog.Logger
	client *vault.Client
	kv     *vault.KVv2

	mu       sync.Mutex
	loginErr error // the last failed login, reported while there is no token
	data     map[string]string
	version  int
	fetched  time.Time
	cached   bool
	accessor string

	stopRenew context.CancelFunc
	renewDone chan struct{}
}

// New logs in, starts renewing the token and loads the secrets once, so a job reads them from
// memory from its first request (the proposal's "cached at job start"). A Vault that cannot be
// reached at start is not fatal: the sidecar serves datasets meanwhile, and secrets answer 503
// until a login succeeds.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.AuthPath == "" {
		cfg.AuthPath = "kubernetes"
	}
	if cfg.Mount == "" {
		cfg.Mount = "secret"
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Addr == "" || cfg.Role == "" || cfg.Path == "" || cfg.TokenFile == "" {
		return nil, errors.New("secrets: Vault address, role, path and token file are required")
	}
	vc := vault.DefaultConfig()
	vc.Address = cfg.Addr
	vc.Timeout = 10 * time.Second
	vc.MaxRetries = 1
	if cfg.CACert != "" {
		if err := vc.ConfigureTLS(&vault.TLSConfig{CACert: cfg.CACert}); err != nil {
			return nil, fmt.Errorf("secrets: %w", err)
		}
	}
	if vc.Error != nil {
		return nil, fmt.Errorf("secrets: %w", vc.Error)
	}
	client, err := vault.NewClient(vc)
	if err != nil {
		return nil, fmt.Errorf("secrets: %w", err)
	}
	client.ClearToken() // never a token from the environment: only our own login's
	if cfg.Namespace != "" {
		client.SetNamespace(cfg.Namespace)
	}
	s := &Store{cfg: cfg, log: cfg.Log, client: client, kv: client.KVv2(cfg.Mount), renewDone: make(chan struct{})}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.stopRenew = cancel
	first := make(chan error, 1)
	go s.keepLoggedIn(rctx, first)
	if err := <-first; err != nil {
		s.log.Warn("vault login failed at start; secrets answer 503 until it succeeds", "error", err)
	} else if _, _, err := s.read(ctx, false); err != nil {
		s.log.Warn("loading secrets at start", "error", err)
	}
	return s, nil
}

// login exchanges the service-account token for a Vault token.
func (s *Store) login(ctx context.Context) (*vault.Secret, error) {
	jwt, err := os.ReadFile(s.cfg.TokenFile)
	if err != nil {
		return nil, fmt.Errorf("%w: reading service-account token: %v", ErrUnavailable, err)
	}
	secret, err := s.client.Logical().WriteWithContext(ctx, "auth/"+s.cfg.AuthPath+"/login", map[string]any{
		"role": s.cfg.Role,
		"jwt":  strings.TrimSpace(string(jwt)),
	})
	if err != nil {
		return nil, classify(err)
	}
	if secret == nil || secret.Auth == nil || secret.Auth.ClientToken == "" {
		return nil, fmt.Errorf("%w: login answered without a token", ErrUnavailable)
	}
	s.client.SetToken(secret.Auth.ClientToken)
	s.mu.Lock()
	s.accessor = secret.Auth.Accessor
	s.mu.Unlock()
	// The accessor identifies the token for audit and revocation; it cannot be used to log in.
	s.log.Info("logged in to vault", "role", s.cfg.Role, "accessor", secret.Auth.Accessor, "ttl", secret.Auth.LeaseDuration, "renewable", secret.Auth.Renewable)
	return secret, nil
}

// keepLoggedIn logs in and renews the token with vault/api's LifetimeWatcher; when Vault refuses
// a renewal (or the token reaches its max TTL) it logs in again, with backoff while Vault is
// away. first receives the outcome of the first login.
func (s *Store) keepLoggedIn(ctx context.Context, first chan<- error) {
	defer close(s.renewDone)
	backoff := time.Second
	for attempt := 0; ; attempt++ {
		secret, err := s.login(ctx)
		s.mu.Lock()
		s.loginErr = err
		s.mu.Unlock()
		if attempt == 0 {
			first <- err
		}
		if err != nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, time.Minute)
			continue
		}
		backoff = time.Second
		if !secret.Auth.Renewable {
			// Log in again shortly before the token expires.
			wait := time.Duration(secret.Auth.LeaseDuration) * time.Second * 2 / 3
			select {
			case <-ctx.Done():
				return
			case <-time.After(max(wait, time.Second)):
			}
			continue
		}
		w, err := s.client.NewLifetimeWatcher(&vault.LifetimeWatcherInput{Secret: secret})
		if err != nil {
			s.log.Error("vault token watcher", "error", err)
			continue
		}
		go w.Start()
	watch:
		for {
			select {
			case <-ctx.Done():
				w.Stop()
				return
			case err := <-w.DoneCh():
				s.log.Info("vault token renewal ended; logging in again", "error", err)
				break watch
			case r := <-w.RenewCh():
				s.log.Debug("vault token renewed", "ttl", r.Secret.Auth.LeaseDuration)
			}
		}
	}
}

// Accessor is the current token's accessor (for audit and tests; never the token).
func (s *Store) Accessor() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accessor
}

// Close stops renewal and revokes the token, so a stopped pod leaves no live Vault token.
func (s *Store) Close(ctx context.Context) error {
	s.stopRenew()
	<-s.renewDone
	if s.client.Token() == "" {
		return nil
	}
	err := s.client.Auth().Token().RevokeSelfWithContext(ctx, "")
	s.client.ClearToken()
	if err != nil {
		return fmt.Errorf("revoking vault token: %w", err)
	}
	s.log.Info("vault token revoked")
	return nil
}

// classify maps a vault/api error to the package's errors.
func classify(err error) error {
	var re *vault.ResponseError
	if errors.As(err, &re) {
		switch {
		case re.StatusCode == http.StatusForbidden, re.StatusCode == http.StatusUnauthorized:
			return fmt.Errorf("%w: %s", ErrForbidden, strings.Join(re.Errors, "; "))
		case re.StatusCode == http.StatusBadRequest && slices.ContainsFunc(re.Errors, func(e string) bool { return strings.Contains(e, "check-and-set") }):
			return fmt.Errorf("%w: another writer changed them; read them again and retry", ErrConflict)
		case re.StatusCode >= 500:
			return fmt.Errorf("%w: %s", ErrUnavailable, strings.Join(re.Errors, "; "))
		}
		return fmt.Errorf("vault: %d %s", re.StatusCode, strings.Join(re.Errors, "; "))
	}
	if errors.Is(err, vault.ErrSecretNotFound) {
		return err
	}
	return fmt.Errorf("%w: %v", ErrUnavailable, err)
}

// do runs a Vault call, logging in again once when the token was refused (expired, revoked).
func (s *Store) do(ctx context.Context, call func() error) error {
	err := call()
	if err == nil || !errors.Is(classify(err), ErrForbidden) {
		return err
	}
	if _, lerr := s.login(ctx); lerr != nil {
		return err
	}
	return call()
}

// read returns the secrets and their version: from the cache while it is younger than CacheTTL
// (which is also how long they outlive a Vault outage), unless bypass asks for Vault itself.
func (s *Store) read(ctx context.Context, bypass bool) (map[string]string, int, error) {
	s.mu.Lock()
	if s.cached && !bypass && !s.fetched.IsZero() && time.Since(s.fetched) < s.cfg.CacheTTL {
		data, v := maps.Clone(s.data), s.version
		s.mu.Unlock()
		return data, v, nil
	}
	s.mu.Unlock()
	if s.client.Token() == "" {
		s.mu.Lock()
		lerr := s.loginErr
		s.mu.Unlock()
		if lerr != nil {
			return nil, 0, fmt.Errorf("vault login: %w", lerr)
		}
		return nil, 0, fmt.Errorf("%w: not logged in to vault yet", ErrUnavailable)
	}
	var sec *vault.KVSecret
	err := s.do(ctx, func() (err error) { sec, err = s.kv.Get(ctx, s.cfg.Path); return err })
	data, version := map[string]string{}, 0
	switch {
	case errors.Is(err, vault.ErrSecretNotFound):
		// Nothing written yet, or the latest version was deleted outside Warden: the version
		// to write on top of is in the metadata.
		var md *vault.KVMetadata
		if merr := s.do(ctx, func() (err error) { md, err = s.kv.GetMetadata(ctx, s.cfg.Path); return err }); merr == nil {
			version = md.CurrentVersion
		} else if !errors.Is(merr, vault.ErrSecretNotFound) {
			return nil, 0, classify(merr)
		}
	case err != nil:
		return nil, 0, classify(err)
	default:
		for k, v := range sec.Data {
			switch t := v.(type) {
			case string:
				data[k] = t
			default: // written by other tools: hand it back as JSON text
				b, _ := json.Marshal(t)
				data[k] = string(b)
			}
		}
		if sec.VersionMetadata != nil {
			version = sec.VersionMetadata.Version
		}
	}
	s.store(data, version)
	return maps.Clone(data), version, nil
}

func (s *Store) store(data map[string]string, version int) {
	s.mu.Lock()
	s.data, s.version, s.fetched, s.cached = data, version, time.Now(), true
	s.mu.Unlock()
}

// Keys lists the secret names, sorted, with the version they were read at.
func (s *Store) Keys(ctx context.Context) ([]string, int, error) {
	data, v, err := s.read(ctx, false)
	if err != nil {
		return nil, 0, err
	}
	return slices.Sorted(maps.Keys(data)), v, nil
}

// All returns every secret.
func (s *Store) All(ctx context.Context) (map[string]string, int, error) {
	return s.read(ctx, false)
}

// Get returns one secret.
func (s *Store) Get(ctx context.Context, key string) (string, int, error) {
	if err := ValidKey(key); err != nil {
		return "", 0, err
	}
	data, v, err := s.read(ctx, false)
	if err != nil {
		return "", 0, err
	}
	val, ok := data[key]
	if !ok {
		return "", v, fmt.Errorf("%w: %q", ErrNotFound, key)
	}
	return val, v, nil
}

// SetAll replaces all secrets as one new version. The write is check-and-set: against ifVersion
// when given (the version the caller read), else against the version this sidecar last saw, so
// a writer that did not see another's change gets ErrConflict instead of erasing it.
func (s *Store) SetAll(ctx context.Context, data map[string]string, ifVersion *int) (int, error) {
	for k := range data {
		if err := ValidKey(k); err != nil {
			return 0, err
		}
	}
	size, err := encodedSize(data)
	if err != nil {
		return 0, err
	}
	if size > s.cfg.MaxBytes {
		return 0, fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, size, s.cfg.MaxBytes)
	}
	cas := 0
	if ifVersion != nil {
		cas = *ifVersion
	} else {
		s.mu.Lock()
		cached, v := s.cached, s.version
		s.mu.Unlock()
		if !cached {
			if _, v, err = s.read(ctx, true); err != nil {
				return 0, err
			}
		}
		cas = v
	}
	return s.write(ctx, data, cas)
}

// Delete removes one secret (a new version without it), check-and-set like SetAll.
func (s *Store) Delete(ctx context.Context, key string, ifVersion *int) (int, error) {
	if err := ValidKey(key); err != nil {
		return 0, err
	}
	data, v, err := s.read(ctx, true)
	if err != nil {
		return 0, err
	}
	if ifVersion != nil && *ifVersion != v {
		return 0, fmt.Errorf("%w: version %d was read, %d is current", ErrConflict, *ifVersion, v)
	}
	if _, ok := data[key]; !ok {
		return 0, fmt.Errorf("%w: %q", ErrNotFound, key)
	}
	delete(data, key)
	return s.write(ctx, data, v)
}

func (s *Store) write(ctx context.Context, data map[string]string, cas int) (int, error) {
	payload := make(map[string]any, len(data))
	for k, v := range data {
		payload[k] = v
	}
	var sec *vault.KVSecret
	err := s.do(ctx, func() (err error) {
		sec, err = s.kv.Put(ctx, s.cfg.Path, payload, vault.WithCheckAndSet(cas))
		return err
	})
	if err != nil {
		err = classify(err)
		if errors.Is(err, ErrConflict) {
			// The next read goes to Vault; the version a blind write is checked against stays
			// the one last read, so retrying without reading conflicts again.
			s.mu.Lock()
			s.fetched = time.Time{}
			s.mu.Unlock()
		}
		return 0, err
	}
	v := cas + 1
	if sec != nil && sec.VersionMetadata != nil {
		v = sec.VersionMetadata.Version
	}
	s.store(maps.Clone(data), v)
	return v, nil
}

func encodedSize(data map[string]string) (int, error) {
	b, err := json.Marshal(data)
	return len(b), err
}

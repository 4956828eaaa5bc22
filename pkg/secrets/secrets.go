// Package secrets is the sidecar's door to Vault: it logs in with the Kubernetes auth method
// using the pod's projected service-account token, keeps the Vault token renewed (and logs in
// again when renewal is refused), revokes it on shutdown, and reads and writes the owner's
// secrets as one KV v2 entry. App code never holds a Vault token.
//
// auth.go holds the token's life (login, renewal, revocation); kv.go the secrets themselves
// (reads, the cache, check-and-set writes).
package secrets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/warden-dev/warden/internal/charset"
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
	ErrBadValue      = errors.New("bad secret value")
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
	// [A-Za-z0-9][A-Za-z0-9._-]{0,255}
	keyName = charset.Name{First: charset.New("A-Za-z0-9"), Rest: charset.New("A-Za-z0-9._-"), Min: 1, Max: 256}
	// [A-Za-z0-9][A-Za-z0-9._-]*, parts joined by '/'
	pathSegment = charset.Name{First: keyName.First, Rest: keyName.Rest, Min: 1}
)

// ValidKey checks a secret name: letters, digits, '.', '_', '-', at most 256.
func ValidKey(k string) error {
	if !keyName.Match(k) {
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
	if !pathSegment.Parts(p, '/') {
		return "", fmt.Errorf("vault path %q (from %q) has an empty, '.'/'..' or unusual segment", p, template)
	}
	return p, nil
}

// DefaultPath is where an owner's secrets live under the KV mount ({namespace} and {owner}, the
// service account's name); manifests/vault's configure-vault.sh writes the same layout into its
// policies.
const DefaultPath = "warden/{namespace}/{owner}"

// ValidOwnersTemplate checks a path template that serves many owners: it must name both
// {namespace} and {owner}, or owners would share an entry, and fill in to a clean path.
func ValidOwnersTemplate(template string) error {
	if !strings.Contains(template, "{namespace}") || !strings.Contains(template, "{owner}") {
		return fmt.Errorf("vault path %q must name {namespace} and {owner}, or owners would share an entry", template)
	}
	_, err := PathFor(template, "ns/sa")
	return err
}

// Owners opens any owner's entry through one session (the broker's login), by the path
// template; a template that cannot name the owner's entry is refused here, not per request.
func (s *Session) Owners(template string) (func(owner string) (KV, error), error) {
	if template == "" {
		template = DefaultPath
	}
	if err := ValidOwnersTemplate(template); err != nil {
		return nil, err
	}
	return func(owner string) (KV, error) {
		p, err := PathFor(template, owner)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
		}
		return s.Entry(p), nil
	}, nil
}

// DefaultRole is the Vault role of an owner when none is given: warden-NAMESPACE-NAME.
func DefaultRole(owner string) string {
	return "warden-" + strings.ReplaceAll(owner, "/", "-")
}

// Values are secrets by name; a value is any JSON value (the proposal's additionalProperties of
// any type), kept as the JSON text it was written as.
type Values map[string]json.RawMessage

// Strings makes Values of plain string secrets.
func Strings(m map[string]string) Values {
	out := make(Values, len(m))
	for k, v := range m {
		b, _ := json.Marshal(v) // a string always encodes
		out[k] = b
	}
	return out
}

// Session is one Vault login, kept renewed: a sidecar's for its owner, or the broker's, which
// serves every owner's entry (Entry) with one token.
type Session struct {
	cfg    Config
	log    *slog.Logger
	client *vault.Client
	kv     *vault.KVv2

	smu      sync.Mutex
	loginErr error // the last failed login, reported while there is no token
	accessor string

	stopRenew context.CancelFunc
	renewDone chan struct{}
}

// Store reads and writes one owner's secrets: one KV v2 entry, cached.
type Store struct {
	*Session
	path string
	own  bool             // Close ends the session too (New's store, not an Entry)
	now  func() time.Time // the cache's clock; tests move it

	mu      sync.Mutex
	data    Values
	version int
	fetched time.Time
	cached  bool
}

// New logs in, starts renewing the token and loads the secrets once, so a job reads them from
// memory from its first request (the proposal's "cached at job start"). A Vault that cannot be
// reached at start is not fatal: the sidecar serves datasets meanwhile, and secrets answer 503
// until a login succeeds.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Path == "" {
		return nil, errors.New("secrets: Vault address, role, path and token file are required")
	}
	sess, err := Login(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s := sess.Entry(cfg.Path)
	s.own = true
	if sess.loggedIn() {
		if _, _, err := s.read(ctx, false); err != nil {
			s.log.Warn("loading secrets at start", "error", err)
		}
	}
	return s, nil
}

// Entry is the store of the KV v2 entry at path, through this session's login. Its cache is its
// own; closing it leaves the session alone.
func (s *Session) Entry(path string) *Store {
	return &Store{Session: s, path: path, now: time.Now}
}

// Login logs in and keeps the token renewed. A Vault that cannot be reached is not fatal: calls
// answer 503 until a login succeeds.
func Login(ctx context.Context, cfg Config) (*Session, error) {
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
	if cfg.Addr == "" || cfg.Role == "" || cfg.TokenFile == "" {
		return nil, errors.New("secrets: Vault address, role, path and token file are required")
	}
	client, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	s := &Session{cfg: cfg, log: cfg.Log, client: client, kv: client.KVv2(cfg.Mount), renewDone: make(chan struct{})}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.stopRenew = cancel
	first := make(chan error, 1)
	go s.keepLoggedIn(rctx, first)
	if err := <-first; err != nil {
		s.log.Warn("vault login failed at start; secrets answer 503 until it succeeds", "error", err)
	}
	return s, nil
}

func (s *Session) loggedIn() bool { return s.client.Token() != "" }

// newClient builds the Vault client. It starts without a token whatever the environment holds
// (VAULT_TOKEN): the only token the sidecar may use is the one its own login returns.
func newClient(cfg Config) (*vault.Client, error) {
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
	client.ClearToken()
	if cfg.Namespace != "" {
		client.SetNamespace(cfg.Namespace)
	}
	return client, nil
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

// Package fakecreds is an in-process GCP IAM Credentials server for tests and the demo: the real
// google.iam.credentials.v1.IAMCredentials gRPC service (credentialspb.IAMCredentialsServer),
// implementing the two calls Warden makes, GenerateAccessToken and SignBlob, with the checks
// the real service makes where they matter to a caller: resource-name validation, scopes,
// lifetime bounds, PermissionDenied for accounts it does not know or may not impersonate, no
// delegation. Google offers no emulator of IAM Credentials, so tests dial this one with the
// real client.
//
// Each account has its own RSA key, so a test can check a signature (PublicKey, and
// VerifySignedURL for Cloud Storage V4 signed URLs). Minted tokens are opaque and remembered
// (Lookup), so the fake STS (package fakests) can tell a token this server issued from a forged
// or expired one.
package fakecreds

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"regexp"
	"slices"
	"sync"
	"time"

	"cloud.google.com/go/iam/credentials/apiv1/credentialspb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// The name IAM Credentials takes: "-" (the project inferred from the account) or a project id,
// then the account's email. IAM also takes an account's unique id there; Warden never sends one,
// so this fake refuses it rather than pretend.
var nameRe = regexp.MustCompile(`^projects/(-|[a-z][a-z0-9-]{4,28}[a-z0-9])/serviceAccounts/([a-z0-9._-]+@[a-z0-9.-]+\.gserviceaccount\.com)$`)

// Lifetime bounds of GenerateAccessToken without the constraints/iam.allowServiceAccountCredentialLifetimeExtension
// org policy (which Warden must not rely on): the default and the maximum are one hour.
const (
	DefaultLifetime = time.Hour
	MaxLifetime     = time.Hour
)

// Method names, as Calls takes them.
const (
	MethodGenerateAccessToken = "GenerateAccessToken"
	MethodSignBlob            = "SignBlob"
)

// TokenInfo is what the server remembers of an access token it minted.
type TokenInfo struct {
	Account string // the service account's email
	Scopes  []string
	Expiry  time.Time
}

type account struct {
	key    *rsa.PrivateKey
	keyID  string
	denied bool
}

// Server is the fake.
type Server struct {
	credentialspb.UnimplementedIAMCredentialsServer

	// Now, when set, is the server's clock (token expiry, Lookup); tests set it before the first
	// call to move time without sleeping. Nil means time.Now.
	Now func() time.Time

	mu       sync.Mutex
	accounts map[string]*account
	tokens   map[string]TokenInfo
	calls    map[string]int
	down     bool

	grpc *grpc.Server
	Addr string // host:port on 127.0.0.1
}

// Start serves on 127.0.0.1 with the given service accounts (emails) existing.
func Start(accounts ...string) (*Server, error) {
	s := &Server{accounts: map[string]*account{}, tokens: map[string]TokenInfo{}, calls: map[string]int{}}
	for _, a := range accounts {
		s.AddAccount(a)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.Addr = l.Addr().String()
	s.grpc = grpc.NewServer()
	credentialspb.RegisterIAMCredentialsServer(s.grpc, s)
	go func() { _ = s.grpc.Serve(l) }()
	return s, nil
}

// Stop ends the server.
func (s *Server) Stop() { s.grpc.Stop() }

// String describes the server for logs.
func (s *Server) String() string { return fmt.Sprintf("fake IAM Credentials at %s", s.Addr) }

// AddAccount creates a service account with a fresh RSA-2048 key (Google's system-managed keys
// are RSA-2048 too). Adding an existing account keeps its key.
func (s *Server) AddAccount(email string) {
	s.mu.Lock()
	_, ok := s.accounts[email]
	s.mu.Unlock()
	if ok {
		return
	}
	// Generated outside the lock: a 2048-bit key takes tens of milliseconds.
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(fmt.Sprintf("fakecreds: generating a key: %v", err)) // only for a bad size or a broken system RNG
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		panic(fmt.Sprintf("fakecreds: encoding a key: %v", err))
	}
	// Real key ids are 40 hex digits; deriving one from the key keeps it stable for the key.
	sum := sha256.Sum256(der)
	a := &account{key: key, keyID: hex.EncodeToString(sum[:20])}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.accounts[email]; !ok {
		s.accounts[email] = a
	}
}

// PublicKey is the public half of an account's signing key, nil for an unknown account.
func (s *Server) PublicKey(email string) *rsa.PublicKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.accounts[email]; ok {
		return &a.key.PublicKey
	}
	return nil
}

// KeyID is the id SignBlob reports for an account's key, "" for an unknown account.
func (s *Server) KeyID(email string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.accounts[email]; ok {
		return a.keyID
	}
	return ""
}

// Deny makes every call for an account answer PermissionDenied, as when the caller's
// roles/iam.serviceAccountTokenCreator binding on it is revoked. Tokens already minted stay
// valid until they expire, as in GCP: revoking the binding does not revoke tokens.
func (s *Server) Deny(email string) { s.setDenied(email, true) }

// Allow undoes Deny.
func (s *Server) Allow(email string) { s.setDenied(email, false) }

func (s *Server) setDenied(email string, denied bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.accounts[email]; ok {
		a.denied = denied
	}
}

// SetDown makes every call fail with Unavailable, as during an outage.
func (s *Server) SetDown(down bool) {
	s.mu.Lock()
	s.down = down
	s.mu.Unlock()
}

// Calls counts the calls of a method (MethodGenerateAccessToken, MethodSignBlob) the server
// received, whatever it answered: tests use it to see that a cache spared a call, or that a
// client retried.
func (s *Server) Calls(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

// Lookup tells whether token is one this server minted and has not expired, and for whom. It
// is what fakests asks about a subject token.
func (s *Server) Lookup(token string) (TokenInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[token]
	if !ok {
		return TokenInfo{}, false
	}
	if !s.nowLocked().Before(t.Expiry) {
		// Forgotten once expired, so a long demo run does not keep every token it ever minted.
		delete(s.tokens, token)
		return TokenInfo{}, false
	}
	t.Scopes = slices.Clone(t.Scopes)
	return t, true
}

func (s *Server) nowLocked() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// begin counts a call and answers for an outage and for the name, returning the account.
// permission is the IAM permission the method needs, for the error text.
func (s *Server) begin(method, name string, delegates []string, permission string) (string, *account, error) {
	s.calls[method]++
	if s.down {
		return "", nil, status.Error(codes.Unavailable, "iamcredentials.googleapis.com is unavailable")
	}
	m := nameRe.FindStringSubmatch(name)
	if m == nil {
		return "", nil, status.Errorf(codes.InvalidArgument, "Invalid form of account ID %q. Should be [Gaia ID |Email |Unique ID |] of the account", name)
	}
	if len(delegates) > 0 {
		// Delegation chains let one account act through others; Warden never uses them, and a
		// fake that accepted them would hide a client that sends them.
		return "", nil, status.Error(codes.InvalidArgument, "delegates are not supported by this fake")
	}
	a, ok := s.accounts[m[2]]
	if !ok || a.denied {
		// IAM does not say whether an account exists to a caller who may not use it.
		return "", nil, status.Errorf(codes.PermissionDenied, "Permission '%s' denied on resource (or it may not exist).", permission)
	}
	return m[2], a, nil
}

// GenerateAccessToken implements credentialspb.IAMCredentialsServer.
func (s *Server) GenerateAccessToken(_ context.Context, req *credentialspb.GenerateAccessTokenRequest) (*credentialspb.GenerateAccessTokenResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	email, _, err := s.begin(MethodGenerateAccessToken, req.GetName(), req.GetDelegates(), "iam.serviceAccounts.getAccessToken")
	if err != nil {
		return nil, err
	}
	if len(req.GetScope()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "Scope required.")
	}
	for _, sc := range req.GetScope() {
		if sc == "" {
			return nil, status.Error(codes.InvalidArgument, "Scope must not be empty.")
		}
	}
	lifetime := DefaultLifetime
	if l := req.GetLifetime(); l != nil {
		if err := l.CheckValid(); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "invalid lifetime: %v", err)
		}
		lifetime = l.AsDuration()
		if lifetime < time.Second || lifetime > MaxLifetime {
			return nil, status.Errorf(codes.InvalidArgument, "The lifetime must be between 1s and %ds, got %s.", int(MaxLifetime.Seconds()), lifetime)
		}
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	tok := "ya29.fake-" + base64.RawURLEncoding.EncodeToString(b)
	exp := s.nowLocked().Add(lifetime)
	s.tokens[tok] = TokenInfo{Account: email, Scopes: slices.Clone(req.GetScope()), Expiry: exp}
	return &credentialspb.GenerateAccessTokenResponse{AccessToken: tok, ExpireTime: timestamppb.New(exp)}, nil
}

// SignBlob implements credentialspb.IAMCredentialsServer: RSASSA-PKCS1-v1_5 with SHA-256 over
// the payload, as Google's system-managed keys sign.
func (s *Server) SignBlob(_ context.Context, req *credentialspb.SignBlobRequest) (*credentialspb.SignBlobResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, a, err := s.begin(MethodSignBlob, req.GetName(), req.GetDelegates(), "iam.serviceAccounts.signBlob")
	if err != nil {
		return nil, err
	}
	if len(req.GetPayload()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "Payload must not be empty.")
	}
	sum := sha256.Sum256(req.GetPayload())
	sig, err := rsa.SignPKCS1v15(rand.Reader, a.key, crypto.SHA256, sum[:])
	if err != nil {
		return nil, status.Errorf(codes.Internal, "signing: %v", err)
	}
	return &credentialspb.SignBlobResponse{KeyId: a.keyID, SignedBlob: sig}, nil
}

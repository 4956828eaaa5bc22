// Package fakeiam is an in-process GCP IAM admin server for tests and the demo: the real
// google.iam.admin.v1.IAM gRPC service (adminpb.IAMServer), implementing the two calls Warden
// makes, GetIamPolicy and SetIamPolicy on service accounts, with IAM's semantics where they
// matter: etags (a stale one is Aborted), policy versions (conditions need version 3),
// resource-name validation, PermissionDenied for accounts it does not know. No emulator of IAM
// exists, so this is the one fake the tests use.
package fakeiam

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"sync"

	"cloud.google.com/go/iam/admin/apiv1/adminpb"
	"cloud.google.com/go/iam/apiv1/iampb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

var resourceRe = regexp.MustCompile(`^projects/([a-z][a-z0-9-]{4,28}[a-z0-9]|-)/serviceAccounts/([a-z0-9-]+@[a-z0-9-]+\.iam\.gserviceaccount\.com)$`)

// Server is the fake.
type Server struct {
	adminpb.UnimplementedIAMServer

	mu       sync.Mutex
	policies map[string]*iampb.Policy // by service-account email
	serial   map[string]int
	writes   map[string]int
	down     bool
	// BeforeSet, when set, runs inside SetIamPolicy before the etag is checked, with the
	// account's email: a test can change the stored policy there to play a concurrent writer.
	BeforeSet func(email string)

	grpc *grpc.Server
	Addr string
}

// Start serves on 127.0.0.1 with the given service accounts (emails) existing, each with an
// empty policy.
func Start(accounts ...string) (*Server, error) {
	s := &Server{policies: map[string]*iampb.Policy{}, serial: map[string]int{}, writes: map[string]int{}}
	for _, a := range accounts {
		s.AddAccount(a)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.Addr = l.Addr().String()
	s.grpc = grpc.NewServer()
	adminpb.RegisterIAMServer(s.grpc, s)
	go func() { _ = s.grpc.Serve(l) }()
	return s, nil
}

// Stop ends the server.
func (s *Server) Stop() { s.grpc.Stop() }

// AddAccount creates a service account with an empty policy.
func (s *Server) AddAccount(email string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.policies[email]; !ok {
		s.policies[email] = &iampb.Policy{Version: 1}
		s.serial[email] = 1
		s.policies[email].Etag = etag(email, 1)
	}
}

// SetDown makes every call fail with Unavailable, as during an outage.
func (s *Server) SetDown(down bool) {
	s.mu.Lock()
	s.down = down
	s.mu.Unlock()
}

// Writes counts successful SetIamPolicy calls on an account.
func (s *Server) Writes(email string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes[email]
}

// Policy returns a copy of an account's policy.
func (s *Server) Policy(email string) *iampb.Policy {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.policies[email]
	if !ok {
		return nil
	}
	return proto.Clone(p).(*iampb.Policy)
}

// Replace stores a policy as an out-of-band writer would (a new etag, no write counted).
func (s *Server) Replace(email string, p *iampb.Policy) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.replaceLocked(email, p)
}

func (s *Server) replaceLocked(email string, p *iampb.Policy) {
	s.serial[email]++
	c := proto.Clone(p).(*iampb.Policy)
	c.Etag = etag(email, s.serial[email])
	s.policies[email] = c
}

func etag(email string, n int) []byte { return []byte(email + "#" + strconv.Itoa(n)) }

func (s *Server) account(resource string) (string, error) {
	m := resourceRe.FindStringSubmatch(resource)
	if m == nil {
		return "", status.Errorf(codes.InvalidArgument, "invalid resource name %q: want projects/-/serviceAccounts/EMAIL", resource)
	}
	if _, ok := s.policies[m[2]]; !ok {
		// IAM does not say whether an account exists to callers who may not see it.
		return "", status.Errorf(codes.PermissionDenied, "Permission 'iam.serviceAccounts.getIamPolicy' denied on resource (or it may not exist).")
	}
	return m[2], nil
}

func hasConditions(p *iampb.Policy) bool {
	for _, b := range p.Bindings {
		if b.Condition != nil {
			return true
		}
	}
	return false
}

// GetIamPolicy implements adminpb.IAMServer.
func (s *Server) GetIamPolicy(_ context.Context, req *iampb.GetIamPolicyRequest) (*iampb.Policy, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return nil, status.Error(codes.Unavailable, "iam.googleapis.com is unavailable")
	}
	email, err := s.account(req.GetResource())
	if err != nil {
		return nil, err
	}
	p := proto.Clone(s.policies[email]).(*iampb.Policy)
	if hasConditions(p) && req.GetOptions().GetRequestedPolicyVersion() < 3 {
		return nil, status.Error(codes.InvalidArgument, "the policy has conditional role bindings: request policy version 3")
	}
	return p, nil
}

// SetIamPolicy implements adminpb.IAMServer.
func (s *Server) SetIamPolicy(_ context.Context, req *iampb.SetIamPolicyRequest) (*iampb.Policy, error) {
	s.mu.Lock()
	if s.down {
		s.mu.Unlock()
		return nil, status.Error(codes.Unavailable, "iam.googleapis.com is unavailable")
	}
	email, err := s.account(req.GetResource())
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	hook := s.BeforeSet
	s.mu.Unlock()
	if hook != nil {
		hook(email)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := req.GetPolicy()
	if p == nil {
		return nil, status.Error(codes.InvalidArgument, "no policy")
	}
	if len(p.Etag) > 0 && string(p.Etag) != string(s.policies[email].Etag) {
		return nil, status.Error(codes.Aborted, "There were concurrent policy changes. Please retry the whole read-modify-write with exponential backoff.")
	}
	if hasConditions(p) && p.Version != 3 {
		return nil, status.Error(codes.InvalidArgument, "conditional role bindings need policy version 3")
	}
	for _, b := range p.Bindings {
		if b.Role == "" || len(b.Members) == 0 {
			return nil, status.Errorf(codes.InvalidArgument, "binding %q has no members", b.Role)
		}
	}
	s.replaceLocked(email, p)
	s.writes[email]++
	return proto.Clone(s.policies[email]).(*iampb.Policy), nil
}

// Members lists the members of the unconditional binding of role on an account.
func (s *Server) Members(email, role string) []string {
	p := s.Policy(email)
	if p == nil {
		return nil
	}
	for _, b := range p.Bindings {
		if b.Role == role && b.Condition == nil {
			return b.Members
		}
	}
	return nil
}

// String describes the server for logs.
func (s *Server) String() string { return fmt.Sprintf("fake IAM at %s", s.Addr) }

package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/warden-dev/warden/internal/serve"
	"github.com/warden-dev/warden/pkg/admission/mutate"
	"github.com/warden-dev/warden/pkg/broker"
	"github.com/warden-dev/warden/pkg/cloudstorage"
	"github.com/warden-dev/warden/pkg/grants"
	"github.com/warden-dev/warden/pkg/identity"
	"github.com/warden-dev/warden/pkg/podcert"
	"github.com/warden-dev/warden/pkg/secrets"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
)

// The broker's listener: TLS with the webhook's certificate (reloaded on rotation), its grant
// source, GKE workload identity, Cloud Storage credentials and the org admin endpoint.

// The broker's grant sources (--broker-grants): the policy's reader lists, or RBAC.
const (
	GrantsPolicy = "policy"
	GrantsRBAC   = "rbac"
)

// ValidGrants checks a grant source name ("" is GrantsPolicy).
func ValidGrants(g string) error {
	if g != "" && g != GrantsPolicy && g != GrantsRBAC {
		return fmt.Errorf("%q is not %s or %s", g, GrantsPolicy, GrantsRBAC)
	}
	return nil
}

// setupIdentity builds the workload-identity binder and starts its reconciler with the manager.
func (s *Server) setupIdentity() (*identity.Binder, error) {
	g := s.opts.GCP
	if g.IAM == nil {
		return nil, errors.New("webhook: GCP identity needs an IAM client")
	}
	b := &identity.Binder{
		Policies:    &identity.Policies{IAM: g.IAM},
		Records:     &identity.Records{Kube: s.kube, Namespace: s.opts.Namespace},
		Kube:        s.kube,
		Policy:      s.source.View,
		Propagation: g.Propagation,
		Log:         s.log.With("component", "identity"),
	}
	rec := &identity.Reconciler{Binder: b, Resync: g.Resync, Log: s.log.With("component", "identity-reconciler"),
		OrgObjects: !s.opts.NoPolicyObjects}
	if s.policy != nil {
		rec.FileChanged = s.policy.Changed() // bindings follow a policy edit at once
	}
	if err := rec.SetupWithManager(context.Background(), s.mgr); err != nil {
		return nil, fmt.Errorf("webhook: identity reconciler: %w", err)
	}
	return b, nil
}

func (s *Server) setupBroker() error {
	kube := s.kube
	engine := grants.NewPolicyEngine(s.source.View)
	if err := ValidGrants(s.opts.BrokerGrants); err != nil {
		return fmt.Errorf("webhook: broker grants: %w", err)
	}
	if s.opts.BrokerGrants == GrantsRBAC {
		engine.Authz = &broker.RBACAuthorizer{SAR: kube.AuthorizationV1().SubjectAccessReviews(), TTL: 10 * time.Second}
	}
	bo := broker.Options{
		Kube: kube, Grants: engine, Log: s.log.With("component", "broker"), AdminGroup: s.opts.AdminGroup,
		Registerer: s.opts.Registry,
		// The broker trusts a pod only as far as the admission webhooks would: opted-in
		// namespace, and the same invariant, seal included.
		Pods: s.rules, Namespaces: namespaceLabels{s.mgr.GetCache()},
	}
	if s.opts.AdminGroup != "" {
		bo.OrgAdmin = &identity.OrgAdmin{Kube: kube, Namespace: s.opts.Namespace, ConfigMap: s.opts.PolicyConfigMap}
		if !s.opts.NoPolicyObjects {
			bo.OrgAdmin.Objects = s.mgr.GetClient()
		}
	}
	if s.opts.GCP != nil {
		var err error
		if bo.Identity, err = s.setupIdentity(); err != nil {
			return err
		}
	}
	if so := s.opts.Storage; so != nil {
		o := *so
		o.Registerer, o.Log = s.opts.Registry, s.log.With("component", "storage")
		svc, err := cloudstorage.New(o)
		if err != nil {
			return fmt.Errorf("webhook: %w", err)
		}
		bo.Storage, bo.Policy = svc, s.source.View
	}
	if vo := s.opts.OwnerSecrets; vo != nil {
		cfg := *vo
		cfg.Log = s.log.With("component", "owner-secrets")
		sess, err := secrets.Login(context.Background(), cfg)
		if err != nil {
			return fmt.Errorf("webhook: owner secrets: %w", err)
		}
		owners, err := sess.Owners(vo.Path)
		if err != nil {
			return fmt.Errorf("webhook: owner secrets: %w", err)
		}
		bo.Secrets = owners
		bo.Policy = s.source.View
	}
	bo.AcceptTokens = s.opts.AcceptTokens || s.opts.Mutate.SidecarIdentity == mutate.IdentityToken
	if s.opts.signs() {
		bo.Certificates = podcert.NewAuthority(s.keys)
		if err := s.setupSigner(bo.Certificates); err != nil {
			return err
		}
	}
	b, err := broker.New(bo)
	if err != nil {
		return err
	}
	s.bh = b
	if s.broker, err = net.Listen("tcp", s.opts.BrokerAddr); err != nil {
		return fmt.Errorf("webhook: broker listener: %w", err)
	}
	return nil
}

// BrokerAddr is the bound address of the broker listener.
func (s *Server) BrokerAddr() string {
	if s.broker == nil {
		return ""
	}
	return s.broker.Addr().String()
}

// serveBroker serves the broker over TLS, reloading the certificate like the webhook does.
func (s *Server) serveBroker(ctx context.Context, errc chan<- error) error {
	cw, err := certwatcher.New(filepath.Join(s.opts.CertDir, "tls.crt"), filepath.Join(s.opts.CertDir, "tls.key"))
	if err != nil {
		return fmt.Errorf("webhook: broker certificate: %w", err)
	}
	go func() {
		if err := cw.Start(ctx); err != nil {
			s.log.Error("broker certificate watcher", "error", err)
		}
	}()
	srv := &http.Server{
		Handler:           s.bh,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	tl := tls.NewListener(s.broker, &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"http/1.1"},
		GetCertificate: cw.GetCertificate,
		// A sidecar presents its pod certificate; the broker verifies it against the current
		// authority on each request (the CAs rotate with the status keys), so the handshake only
		// asks for it.
		ClientAuth: tls.RequestClientCert,
	})
	go func() {
		if err := serve.Until(ctx, srv, tl); err != nil {
			errc <- err
		}
	}()
	return nil
}

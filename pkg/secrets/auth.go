package secrets

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	vault "github.com/hashicorp/vault/api"
)

// login exchanges the service-account token for a Vault token.
func (s *Session) login(ctx context.Context) (*vault.Secret, error) {
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
	s.smu.Lock()
	s.accessor = secret.Auth.Accessor
	s.smu.Unlock()
	// The accessor identifies the token for audit and revocation; it cannot be used to log in.
	s.log.Info("logged in to vault", "role", s.cfg.Role, "accessor", secret.Auth.Accessor, "ttl", secret.Auth.LeaseDuration, "renewable", secret.Auth.Renewable)
	return secret, nil
}

// keepLoggedIn logs in and renews the token with vault/api's LifetimeWatcher; when Vault refuses
// a renewal (or the token reaches its max TTL) it logs in again, with backoff while Vault is
// away. first receives the outcome of the first login.
func (s *Session) keepLoggedIn(ctx context.Context, first chan<- error) {
	defer close(s.renewDone)
	backoff := time.Second
	for attempt := 0; ; attempt++ {
		secret, err := s.login(ctx)
		s.smu.Lock()
		s.loginErr = err
		s.smu.Unlock()
		if attempt == 0 {
			first <- err
		}
		if err != nil {
			if !sleep(ctx, backoff) {
				return
			}
			backoff = min(backoff*2, time.Minute)
			continue
		}
		backoff = time.Second
		if !s.holdToken(ctx, secret) {
			return
		}
	}
}

// holdToken keeps a fresh login's token alive for as long as Vault allows, and returns true when
// it is time to log in again, false when ctx ended.
func (s *Session) holdToken(ctx context.Context, secret *vault.Secret) bool {
	if !secret.Auth.Renewable {
		// Log in again shortly before the token expires.
		wait := time.Duration(secret.Auth.LeaseDuration) * time.Second * 2 / 3
		return sleep(ctx, max(wait, time.Second))
	}
	w, err := s.client.NewLifetimeWatcher(&vault.LifetimeWatcherInput{Secret: secret})
	if err != nil {
		s.log.Error("vault token watcher", "error", err)
		return true
	}
	go w.Start()
	for {
		select {
		case <-ctx.Done():
			w.Stop()
			return false
		case err := <-w.DoneCh():
			s.log.Info("vault token renewal ended; logging in again", "error", err)
			return true
		case r := <-w.RenewCh():
			s.log.Debug("vault token renewed", "ttl", r.Secret.Auth.LeaseDuration)
		}
	}
}

// sleep waits for d and reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// Accessor is the current token's accessor (for audit and tests; never the token).
func (s *Session) Accessor() string {
	s.smu.Lock()
	defer s.smu.Unlock()
	return s.accessor
}

// Close ends the session of a store New made (an Entry's session is its owner's to close).
func (s *Store) Close(ctx context.Context) error {
	if !s.own {
		return nil
	}
	return s.Session.Close(ctx)
}

// Close stops renewal and revokes the token, so a stopped pod leaves no live Vault token.
func (s *Session) Close(ctx context.Context) error {
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

// do runs a Vault call, logging in again once when the token was refused (expired, revoked).
func (s *Session) do(ctx context.Context, call func() error) error {
	err := call()
	if err == nil || !errors.Is(classify(err), ErrForbidden) {
		return err
	}
	if _, lerr := s.login(ctx); lerr != nil {
		return err
	}
	return call()
}

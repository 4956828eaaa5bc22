package secrets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	vault "github.com/hashicorp/vault/api"
)

// read returns the secrets and their version: from the cache while it is younger than CacheTTL
// (which is also how long they outlive a Vault outage), unless bypass asks for Vault itself.
func (s *Store) read(ctx context.Context, bypass bool) (Values, int, error) {
	if data, v, ok := s.fromCache(bypass); ok {
		return data, v, nil
	}
	data, version, err := s.fetch(ctx)
	if err != nil {
		return nil, 0, err
	}
	s.store(data, version)
	return maps.Clone(data), version, nil
}

// fromCache returns a copy of the cached secrets while they are fresh. A zero fetch time marks
// the cache stale without forgetting the version last read (see write).
func (s *Store) fromCache(bypass bool) (Values, int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cached && !bypass && !s.fetched.IsZero() && s.now().Sub(s.fetched) < s.cfg.CacheTTL {
		return maps.Clone(s.data), s.version, true
	}
	return nil, 0, false
}

// fetch reads the secrets and their version from Vault.
func (s *Store) fetch(ctx context.Context) (Values, int, error) {
	if s.client.Token() == "" {
		s.smu.Lock()
		lerr := s.loginErr
		s.smu.Unlock()
		if lerr != nil {
			return nil, 0, fmt.Errorf("vault login: %w", lerr)
		}
		return nil, 0, fmt.Errorf("%w: not logged in to vault yet", ErrUnavailable)
	}
	var sec *vault.KVSecret
	err := s.do(ctx, func() (err error) { sec, err = s.kv.Get(ctx, s.path); return err })
	data, version := Values{}, 0
	switch {
	case errors.Is(err, vault.ErrSecretNotFound):
		// Nothing at the path: the version to write on top of, if any, is in the metadata. (A
		// latest version deleted outside Warden is not this case: Vault answers it with its
		// version metadata and no data, which the default branch turns into no secrets.)
		var md *vault.KVMetadata
		if merr := s.do(ctx, func() (err error) { md, err = s.kv.GetMetadata(ctx, s.path); return err }); merr == nil {
			version = md.CurrentVersion
		} else if !errors.Is(merr, vault.ErrSecretNotFound) {
			return nil, 0, classify(merr)
		}
	case err != nil:
		return nil, 0, classify(err)
	default:
		for k, v := range sec.Data {
			b, err := json.Marshal(v) // vault/api decodes numbers as json.Number: exact
			if err != nil {
				return nil, 0, fmt.Errorf("%w: secret %q: %v", ErrUnavailable, k, err)
			}
			data[k] = b
		}
		if sec.VersionMetadata != nil {
			version = sec.VersionMetadata.Version
		}
	}
	return data, version, nil
}

func (s *Store) store(data Values, version int) {
	s.mu.Lock()
	s.data, s.version, s.fetched, s.cached = data, version, s.now(), true
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
func (s *Store) All(ctx context.Context) (Values, int, error) {
	return s.read(ctx, false)
}

// Get returns one secret.
func (s *Store) Get(ctx context.Context, key string) (json.RawMessage, int, error) {
	if err := ValidKey(key); err != nil {
		return nil, 0, err
	}
	data, v, err := s.read(ctx, false)
	if err != nil {
		return nil, 0, err
	}
	val, ok := data[key]
	if !ok {
		return nil, v, fmt.Errorf("%w: %q", ErrNotFound, key)
	}
	return val, v, nil
}

// SetAll replaces all secrets as one new version. The write is check-and-set: against ifVersion
// when given (the version the caller read), else against the version this sidecar last saw, so
// a writer that did not see another's change gets ErrConflict instead of erasing it.
func (s *Store) SetAll(ctx context.Context, data Values, ifVersion *int) (int, error) {
	for k, v := range data {
		if err := ValidKey(k); err != nil {
			return 0, err
		}
		if !json.Valid(v) {
			return 0, fmt.Errorf("%w: the value of %q is not JSON", ErrBadValue, k)
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

// DeleteAll removes every secret (a new, empty version), check-and-set like SetAll: the
// proposal's --delete-all. An owner without secrets is no error.
func (s *Store) DeleteAll(ctx context.Context, ifVersion *int) (int, error) {
	return s.SetAll(ctx, Values{}, ifVersion)
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

func (s *Store) write(ctx context.Context, data Values, cas int) (int, error) {
	payload := make(map[string]any, len(data))
	for k, v := range data {
		payload[k] = v // json.RawMessage: written as the JSON it is
	}
	var sec *vault.KVSecret
	err := s.do(ctx, func() (err error) {
		sec, err = s.kv.Put(ctx, s.path, payload, vault.WithCheckAndSet(cas))
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

func encodedSize(data Values) (int, error) {
	b, err := json.Marshal(data)
	return len(b), err
}

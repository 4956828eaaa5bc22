package stage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/warden-dev/warden/pkg/audit"
)

// track makes a published copy known: counted, deletable and scheduled to expire. The janitor
// is woken only when the new deadline is the earliest, since otherwise it already sleeps until
// one that comes first.
func (s *Stager) track(m *Meta) {
	s.mu.Lock()
	e := entryOf(m)
	s.files[m.Name] = e
	first := s.queue.push(e.expires, m.Name)
	s.mu.Unlock()
	if first {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// Delete removes a copy before its TTL. Only the caller it was staged for may delete it; to
// anyone else it does not exist.
func (s *Stager) Delete(name, callerDir string) (*Meta, error) {
	if err := ValidStagedName(name); err != nil {
		return nil, err
	}
	s.mu.Lock()
	e, ok := s.files[name]
	if !ok || e.callerDir.Value() != callerDir {
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: no staged copy %q for this caller", ErrNotFound, name)
	}
	delete(s.files, name)
	s.usage -= e.size
	s.mu.Unlock()
	m := s.meta(name, e)
	s.remove(name, e)
	return m, nil
}

// remove deletes a copy that is no longer tracked: the copy first, so that metadata is never
// missing for a copy app containers can still see. The target is derived from the entry, never
// from what the metadata file says.
func (s *Stager) remove(name string, e entry) {
	dir := e.callerDir.Value()
	target := filepath.Join(s.ownerRoot(), dir, name)
	if err := os.Remove(target); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Error("removing staged copy", "target", target, "error", err)
	}
	if err := os.Remove(s.metaPath(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Error("removing staging metadata", "name", name, "error", err)
	}
	s.removeIfEmpty(dir)
}

// Run deletes copies as they expire until ctx ends. It sleeps until the earliest deadline (not
// a periodic scan), so copies disappear on time. On the way out it waits for the folder fsyncs
// still running, so a clean stop leaves every answered copy durable.
func (s *Stager) Run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	defer s.flushes.Wait()
	for {
		s.expire()
		s.mu.Lock()
		next, ok := s.queue.peek()
		s.mu.Unlock()
		wait := time.Hour
		if ok {
			wait = max(0, time.Duration(next-s.now().UnixNano()))
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-s.wake:
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		}
	}
}

// expire removes everything due by now.
func (s *Stager) expire() {
	now := s.now().UnixNano()
	for {
		s.mu.Lock()
		at, ok := s.queue.peek()
		if !ok || at > now {
			s.mu.Unlock()
			return
		}
		name := s.queue.pop()
		e, live := s.files[name]
		if live && e.expires <= now {
			delete(s.files, name)
			s.usage -= e.size
		} else {
			live = false // deleted early, or rescheduled
		}
		s.mu.Unlock()
		if live {
			m := s.meta(name, e)
			s.remove(name, e)
			s.audit.Log(audit.Record{
				Action: audit.ActionExpire, Owner: m.Owner, Caller: m.Caller, Dataset: m.Dataset,
				Snapshot: snapshotLabel(m), Source: m.Source, Target: m.Target, TTL: m.TTLSeconds,
				Size: m.Size, SHA256: m.SHA256, Outcome: audit.Done, Reason: "ttl expired",
			})
		}
	}
}

func snapshotLabel(m *Meta) string {
	if m.Snapshot == "" {
		return m.SnapshotDir
	}
	return m.Snapshot + " (" + m.SnapshotDir + ")"
}

package stage

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync"
)

// A copy becomes visible in this order, which is what makes a crash at any point safe (kill -9
// loses nothing the page cache holds; a power loss loses what was not yet synced):
//
//  1. the bytes go to {staging}/.warden-tmp/{name}, which app containers cannot see;
//  2. the metadata goes to {state}/.meta-*, a temporary name recovery ignores and removes;
//  3. both files are fsynced, concurrently: the two flushes overlap (ext4 and XFS commit them
//     in one journal transaction), where doing them one after the other cost two;
//  4. the metadata is renamed into place: from here on recovery knows the copy's deadline;
//  5. the copy is renamed into place, visible to app containers, complete on disk;
//  6. the caller folder is fsynced after the answer, in the background: the new names then
//     survive a power loss too. Concurrent stages into one folder share an fsync (dirSyncer).
//
// Recovery (meta.go) handles every prefix: a temporary copy is removed, metadata without its copy
// is removed, a copy without metadata is removed. No step lets a copy be visible before its bytes
// are durable or without a deadline recovery can find.
//
// With Config.NoSync, steps 3 and 6 are skipped: a copy is visible once the kernel holds it. A
// killed sidecar loses nothing by that (the page cache outlives the process, and the kill -9
// tests run both ways). Only a node restart can lose writes the disk had not taken, and it is
// detected: the kernel's boot id, recorded in the state directory, changes (boot.go). Recovery
// then checks every copy's size and SHA-256 against its metadata and removes any that differ,
// with metadata that no longer parses, before the sidecar is ready. That is why NoSync needs a
// native sidecar, ready before any app container starts: nothing reads a copy in between. A
// 4 KiB stage then costs no flush of the disk, which was nearly all of its latency.
//
// Why step 6 does not hold the answer back: it only decides whether a power cut in the next
// millisecond or so keeps the copy's name, and whoever holds the 201 (a process in this pod, on
// this node) loses power with it. Either way recovery finds a consistent state (the copy, or
// nothing); what a visible copy holds is already durable after step 3, which is what a
// restarted app container must be able to trust. The answer then waits for one flush round, not
// two.

// crashPoint is called between the steps above; the kill -9 tests use it to die at each one.
var crashPoint = func(string) {}

// copyToTemp copies src into the temporary folder and returns the open, not yet synced, copy
// and its SHA-256; publish syncs it together with the metadata.
func (s *Stager) copyToTemp(ctx context.Context, src *os.File, size int64, name string) (*os.File, string, error) {
	tmpPath := filepath.Join(s.tmpDir(), name)
	tmp, err := os.OpenFile(tmpPath, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, "", storageErr(err)
	}
	// The umask must not hide the copy from app containers, which run as other users.
	err = tmp.Chmod(0o644)
	var sum string
	if err == nil {
		sum, err = copyFile(ctx, tmp, src, size)
	}
	if err != nil {
		tmp.Close()
		_ = os.Remove(tmpPath)
		return nil, "", storageErr(err)
	}
	crashPoint("copied")
	return tmp, sum, nil
}

// publish makes a finished copy visible to app containers (steps 2 to 6 above). It closes tmp;
// on failure it removes the temporary copy and any metadata it wrote.
func (s *Stager) publish(m *Meta, tmp *os.File) error {
	tmpPath := tmp.Name()
	meta, err := s.createMeta(m)
	if err != nil {
		tmp.Close()
		_ = os.Remove(tmpPath)
		return storageErr(err)
	}
	crashPoint("meta-written")
	if !s.cfg.NoSync {
		err = syncBoth(tmp, meta)
	}
	err = errors.Join(err, tmp.Close(), meta.Close())
	if err == nil {
		crashPoint("synced")
		err = os.Rename(meta.Name(), s.metaPath(m.Name))
	}
	if err != nil {
		_ = os.Remove(tmpPath)
		_ = os.Remove(meta.Name())
		return storageErr(err)
	}
	crashPoint("meta-renamed")
	if err := os.Rename(tmpPath, m.Target); err != nil {
		_ = os.Remove(tmpPath)
		_ = os.Remove(s.metaPath(m.Name))
		return storageErr(err)
	}
	crashPoint("renamed")
	if s.cfg.NoSync {
		return nil
	}
	s.flushes.Add(1)
	go func() {
		defer s.flushes.Done()
		s.dirs.sync(filepath.Dir(m.Target))
	}()
	return nil
}

// createMeta writes m under a temporary name in the state directory; renaming it into place is
// atomic, so a reader (or a restart) never sees a torn metadata file.
func (s *Stager) createMeta(m *Meta) (*os.File, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(s.cfg.StateDir, ".meta-")
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		_ = os.Remove(f.Name())
		return nil, err
	}
	return f, nil
}

// syncBoth fsyncs a and b at once: each waits for the disk, so overlapping them costs about one
// flush instead of two.
func syncBoth(a, b *os.File) error {
	done := make(chan error, 1)
	go func() { done <- b.Sync() }()
	err := a.Sync()
	return errors.Join(err, <-done)
}

// dirSyncer coalesces fsyncs of directories. A rename is durable once an fsync of its directory
// that started after it has finished; every stage that renamed while one was running shares the
// next, so under load a folder is fsynced about once per flush time, not once per copy.
type dirSyncer struct {
	mu    sync.Mutex
	dirs  map[string]*dirSync
	fsync func(dir string) // syncDir; tests count the calls
}

type dirSync struct {
	cond             *sync.Cond
	running          bool
	started, flushed uint64 // fsyncs started and finished, counted
}

// sync makes earlier renames in dir durable. It is best effort: a rename lost to a power cut is
// one recovery cleans up.
func (d *dirSyncer) sync(dir string) {
	d.mu.Lock()
	if d.dirs == nil {
		d.dirs = map[string]*dirSync{}
	}
	g, ok := d.dirs[dir]
	if !ok {
		g = &dirSync{cond: sync.NewCond(&d.mu)}
		d.dirs[dir] = g
	}
	need := g.started + 1 // the first fsync that starts from now on covers this caller's rename
	for g.flushed < need {
		if g.running {
			g.cond.Wait()
			continue
		}
		g.running = true
		g.started++
		n := g.started
		d.mu.Unlock()
		if d.fsync != nil {
			d.fsync(dir)
		} else {
			syncDir(dir)
		}
		d.mu.Lock()
		g.running, g.flushed = false, n
		g.cond.Broadcast()
	}
	if !g.running && g.flushed == g.started {
		delete(d.dirs, dir) // nobody waits: forget the folder, which the janitor may remove
	}
	d.mu.Unlock()
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

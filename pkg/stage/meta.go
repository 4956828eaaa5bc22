package stage

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Meta is what is known about one staged copy; it is written to the state directory.
type Meta struct {
	Name        string    `json:"name"`
	Dataset     string    `json:"dataset"`
	Snapshot    string    `json:"snapshot"`     // snapshot name, "" for the head
	SnapshotDir string    `json:"snapshot_dir"` // under the snapshot root
	Source      string    `json:"source"`       // path inside the snapshot
	Target      string    `json:"target"`       // the copy, as the sidecar sees it
	AppPath     string    `json:"path"`         // the copy, as app containers see it
	Owner       string    `json:"owner"`
	Caller      string    `json:"caller"`
	CallerDir   string    `json:"caller_dir"`
	TTLSeconds  int64     `json:"ttl_seconds"`
	Created     time.Time `json:"created"`
	ExpiresAt   time.Time `json:"expires_at"`
	Size        int64     `json:"size"`
	SHA256      string    `json:"sha256"`
}

func (s *Stager) metaPath(name string) string {
	return filepath.Join(s.cfg.StateDir, name+".json")
}

// recover rebuilds the tracked copies, their quota use and the expiry schedule from the state
// directory, and removes what a killed run left half done.
func (s *Stager) recover() error {
	restarted, err := s.nodeRestarted()
	if err != nil {
		return err
	}
	if err := s.recoverMeta(restarted); err != nil {
		return err
	}
	if err := s.removeOrphans(); err != nil {
		return err
	}
	return s.recordBoot()
}

// recoverMeta reads back every copy's metadata. Metadata that is unreadable, or whose copy is
// gone (typically: the process died between writing it and renaming the copy into place), is
// removed. After a node restart (verify) a copy must also still hold what its metadata says,
// or both go: writes the disk had not taken when the node went down are lost (publish.go).
func (s *Stager) recoverMeta(verify bool) error {
	entries, err := os.ReadDir(s.cfg.StateDir)
	if err != nil {
		return fmt.Errorf("stage: reading state: %w", err)
	}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || ValidStagedName(name) != nil {
			if strings.HasPrefix(e.Name(), ".meta-") { // an interrupted metadata write
				_ = os.Remove(filepath.Join(s.cfg.StateDir, e.Name()))
			}
			continue
		}
		m, err := s.readMeta(name)
		if err != nil {
			s.log.Warn("removing unreadable staging metadata", "name", name, "error", err)
			_ = os.Remove(s.metaPath(name))
			continue
		}
		if fi, err := os.Lstat(m.Target); err != nil || !fi.Mode().IsRegular() {
			s.log.Info("removing metadata of a copy that is gone", "name", name)
			_ = os.Remove(s.metaPath(name))
			continue
		}
		if verify {
			if err := checkCopy(m); err != nil {
				s.log.Warn("removing a copy the node restart left incomplete", "name", name, "error", err)
				_ = os.Remove(m.Target)
				_ = os.Remove(s.metaPath(name))
				continue
			}
		}
		e := entryOf(m)
		s.files[name] = e
		s.usage += m.Size
		s.queue.push(e.expires, name)
	}
	return nil
}

// removeOrphans removes copies nobody knows about (their metadata was lost): without a deadline
// they would never expire. Empty caller folders go too; the owner's own folder stays because
// app containers mount it.
func (s *Stager) removeOrphans() error {
	callers, err := os.ReadDir(s.ownerRoot())
	if err != nil {
		return fmt.Errorf("stage: %w", err)
	}
	for _, c := range callers {
		dir := filepath.Join(s.ownerRoot(), c.Name())
		if !c.IsDir() {
			_ = os.Remove(dir)
			continue
		}
		files, _ := os.ReadDir(dir)
		for _, f := range files {
			if e, ok := s.files[f.Name()]; !ok || e.callerDir.Value() != c.Name() {
				s.log.Info("removing orphaned copy", "path", filepath.Join(dir, f.Name()))
				_ = os.RemoveAll(filepath.Join(dir, f.Name()))
			}
		}
		s.removeIfEmpty(c.Name())
	}
	return nil
}

func (s *Stager) removeIfEmpty(callerDir string) {
	if callerDir == s.ownerDir {
		return
	}
	_ = os.Remove(filepath.Join(s.ownerRoot(), callerDir)) // fails, harmlessly, when not empty
}

// readMeta reads one copy's metadata and refuses any that names a target outside this owner's
// caller folders: the janitor deletes targets, so forged or stale metadata must not make it
// delete anything else.
func (s *Stager) readMeta(name string) (*Meta, error) {
	b, err := os.ReadFile(s.metaPath(name))
	if err != nil {
		return nil, err
	}
	var m Meta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	if m.Name != name || m.Target != filepath.Join(s.ownerRoot(), m.CallerDir, name) || strings.Contains(m.CallerDir, "/") || m.CallerDir == ".." {
		return nil, errors.New("metadata does not describe a copy of this owner")
	}
	return &m, nil
}

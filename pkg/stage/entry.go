package stage

import (
	"path/filepath"
	"time"
	"unique"
)

// entry is what the stager keeps in memory about one published copy: enough to count it against
// the quota, to tell who may delete it and to expire it. Everything else is in its metadata file,
// which the janitor reads back once, when the copy goes. The caller folder is interned: an owner
// has few callers but may hold thousands of copies for them.
type entry struct {
	callerDir unique.Handle[string]
	size      int64
	expires   int64 // Unix nanoseconds, as the metadata's ExpiresAt
}

func entryOf(m *Meta) entry {
	return entry{callerDir: unique.Make(m.CallerDir), size: m.Size, expires: m.ExpiresAt.UnixNano()}
}

// meta reads back a tracked copy's metadata for the audit record of its deletion. Should that
// fail (the state volume lost the file), what the entry holds still describes the copy well
// enough to remove it and say so.
func (s *Stager) meta(name string, e entry) *Meta {
	if m, err := s.readMeta(name); err == nil && m.CallerDir == e.callerDir.Value() {
		return m
	}
	dir := e.callerDir.Value()
	return &Meta{Name: name, Owner: s.cfg.Owner, CallerDir: dir, Size: e.size,
		Target: filepath.Join(s.ownerRoot(), dir, name), ExpiresAt: time.Unix(0, e.expires).UTC()}
}

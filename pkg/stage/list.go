package stage

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"
)

// Entry is one item of a folder listing.
type Entry struct {
	Name    string    `json:"name"`
	Size    int64     `json:"size"`
	Dir     bool      `json:"dir"`
	ModTime time.Time `json:"mod_time"`
}

// MaxEntries bounds a listing.
const MaxEntries = 10000

// List lists a folder of a snapshot. Symbolic links are shown as what they point to, and left
// out when they point outside the snapshot.
func (s *Stager) List(snapshotDir, p string) ([]Entry, bool, error) {
	rel, err := CleanRelPath(p, true)
	if err != nil {
		return nil, false, err
	}
	root, err := s.openSnapshot(snapshotDir)
	if err != nil {
		return nil, false, err
	}
	defer root.Close()
	dir, err := root.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_DIRECTORY, 0)
	if err != nil {
		if errors.Is(err, syscall.ENOTDIR) {
			return nil, false, fmt.Errorf("%w: %q is not a directory", ErrBadRequest, rel)
		}
		return nil, false, openErr(rel, err)
	}
	defer dir.Close()
	des, err := dir.ReadDir(MaxEntries + 1)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, false, err
	}
	truncated := len(des) > MaxEntries
	if truncated {
		des = des[:MaxEntries]
	}
	out := make([]Entry, 0, len(des))
	for _, de := range des {
		child := de.Name()
		if rel != "." {
			child = rel + "/" + de.Name()
		}
		fi, err := root.Stat(child) // follows links, but only inside the snapshot
		if err != nil {
			continue
		}
		if !fi.IsDir() && !fi.Mode().IsRegular() {
			continue
		}
		out = append(out, Entry{Name: de.Name(), Size: fi.Size(), Dir: fi.IsDir(), ModTime: fi.ModTime().UTC()})
	}
	return out, truncated, nil
}

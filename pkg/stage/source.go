package stage

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"
)

// openSnapshot opens a snapshot directory as an os.Root confined to the share: neither the
// policy's directory nor any path under it can lead out, whatever symlinks it contains.
func (s *Stager) openSnapshot(dir string) (*os.Root, error) {
	share, err := os.OpenRoot(s.cfg.SnapshotRoot)
	if err != nil {
		return nil, fmt.Errorf("opening snapshot share: %w", err)
	}
	defer share.Close()
	root, err := share.OpenRoot(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: snapshot directory %q does not exist on the share", ErrNotFound, dir)
		}
		return nil, fmt.Errorf("opening snapshot %q: %w", dir, err)
	}
	return root, nil
}

// openSource opens the file to stage and returns it with its size. The size is the one seen
// when it was opened: the copy checks the file still has it (ErrChanged), and the quota is
// reserved against it. The open file stays valid after the snapshot root is closed.
func (s *Stager) openSource(snapshotDir, rel string) (*os.File, int64, error) {
	root, err := s.openSnapshot(snapshotDir)
	if err != nil {
		return nil, 0, err
	}
	defer root.Close()
	// O_NONBLOCK: opening a FIFO planted in the share must not hang the request.
	src, err := root.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, 0, openErr(rel, err)
	}
	fi, err := src.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%w: %q is a %s", ErrNotRegular, rel, describe(fi.Mode()))
	}
	if err == nil {
		err = s.checkSameFile(root, rel, fi)
	}
	if err != nil {
		src.Close()
		return nil, 0, err
	}
	return src, fi.Size(), nil
}

// openErr turns an os.Root error into one of the package's errors.
func openErr(p string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: %q does not exist in the dataset", ErrNotFound, p)
	case errors.Is(err, syscall.ELOOP), strings.Contains(err.Error(), "escapes"):
		return fmt.Errorf("%w: %q leads outside the dataset", ErrBadPath, p)
	case errors.Is(err, syscall.ENOTDIR):
		return fmt.Errorf("%w: a parent of %q is not a directory", ErrNotFound, p)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("the sidecar may not read %q on the snapshot share (check the share's permissions): %w", p, err)
	}
	return err
}

// checkSameFile refuses hard links (unless allowed) and files on another filesystem than the
// snapshot (a mount point inside the share), the two ways a path inside the snapshot can reach
// bytes outside it that os.Root cannot see.
func (s *Stager) checkSameFile(root *os.Root, rel string, fi os.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if !s.cfg.AllowHardlinks && st.Nlink > 1 {
		return fmt.Errorf("%w: %q has %d hard links; Warden refuses hard-linked files, which can alias data outside the snapshot (an admin can allow them with --allow-hardlinks)", ErrBadPath, rel, st.Nlink)
	}
	rfi, err := root.Stat(".")
	if err != nil {
		return err
	}
	if rst, ok := rfi.Sys().(*syscall.Stat_t); ok && rst.Dev != st.Dev {
		return fmt.Errorf("%w: %q is on another filesystem than the snapshot", ErrBadPath, rel)
	}
	return nil
}

func describe(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	}
	return "special file"
}

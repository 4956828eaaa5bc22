package stage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// A copy published without waiting for the disk (Config.NoSync) is safe as long as the kernel
// that holds it runs: a killed or restarted sidecar finds it in the page cache. Only a node
// restart can lose it, and the kernel's boot id tells one: it is new at every boot. The state
// directory records the boot id it was last recovered under; a different one (or none: a first
// start, or a record the restart lost) has recovery check every copy (meta.go).

// bootIDPath is the kernel's boot id (a variable for tests).
var bootIDPath = "/proc/sys/kernel/random/boot_id"

const bootFile = ".boot-id"

func bootID() ([]byte, error) {
	b, err := os.ReadFile(bootIDPath)
	if err != nil {
		return nil, fmt.Errorf("stage: reading the kernel's boot id: %w", err)
	}
	return bytes.TrimSpace(b), nil
}

// nodeRestarted is whether the copies in the state directory may predate this boot.
func (s *Stager) nodeRestarted() (bool, error) {
	id, err := bootID()
	if err != nil {
		return false, err
	}
	recorded, err := os.ReadFile(filepath.Join(s.cfg.StateDir, bootFile))
	if errors.Is(err, os.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("stage: %w", err)
	}
	return !bytes.Equal(bytes.TrimSpace(recorded), id), nil
}

// recordBoot notes that the state directory's copies are this boot's, durably: a record lost
// to a crash only makes the next start check the copies again.
func (s *Stager) recordBoot() error {
	id, err := bootID()
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(s.cfg.StateDir, ".meta-boot-")
	if err == nil {
		_, err = f.Write(append(id, '\n'))
		err = errors.Join(err, f.Sync(), f.Close())
		if err == nil {
			err = os.Rename(f.Name(), filepath.Join(s.cfg.StateDir, bootFile))
		}
		if err != nil {
			_ = os.Remove(f.Name())
		}
	}
	if err != nil {
		return fmt.Errorf("stage: recording the boot id: %w", err)
	}
	syncDir(s.cfg.StateDir)
	return nil
}

// checkCopy is whether m's copy holds the bytes its metadata describes.
func checkCopy(m *Meta) error {
	f, err := os.Open(m.Target)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() != m.Size {
		return fmt.Errorf("%d bytes, its metadata says %d", fi.Size(), m.Size)
	}
	h := sha256.New()
	if err := hashRange(context.Background(), h, f, 0, m.Size); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != m.SHA256 {
		return fmt.Errorf("SHA-256 %s, its metadata says %s", got, m.SHA256)
	}
	return nil
}

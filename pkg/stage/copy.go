package stage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// copyChunk is the unit of the pipelined copy: large enough that the per-chunk syscalls are
// noise, small enough that hashing the previous chunk overlaps the kernel copy of this one.
const copyChunk = 8 << 20

// copyFile copies exactly size bytes from src to dst and returns the SHA-256 of what dst now
// holds. Three things overlap, chunk by chunk: the kernel's copy, the disk writing back what was
// copied (sync_file_range), and hashing on a second goroutine. It tries a reflink first (FICLONE: instant on btrfs and XFS), then io.Copy between the
// two *os.Files, which Go turns into copy_file_range (in-kernel, no user-space buffers) on Linux
// and into a read/write loop across filesystems that refuse it. The hash is computed from the
// destination, chunk by chunk, on a second goroutine while the next chunk is copied: it is the
// hash of the staged bytes even if the source changes underneath, at almost no extra latency.
func copyFile(ctx context.Context, dst, src *os.File, size int64) (string, error) {
	h := sha256.New()
	if err := unix.IoctlFileClone(int(dst.Fd()), int(src.Fd())); err == nil {
		if fi, err := dst.Stat(); err == nil && fi.Size() == size {
			if err := hashRange(ctx, h, dst, 0, size); err != nil {
				return "", err
			}
			return hex.EncodeToString(h.Sum(nil)), nil
		}
		// A clone of a file that changed size since it was opened: start over by copying.
		if err := dst.Truncate(0); err != nil {
			return "", err
		}
	}

	if size <= copyChunk {
		// One chunk: nothing to overlap, so no second goroutine and no early write-back (the
		// fsync that follows does it).
		if err := copyRange(dst, src, 0, size); err != nil {
			return "", err
		}
		if err := hashRange(ctx, h, dst, 0, size); err != nil {
			return "", err
		}
		return hex.EncodeToString(h.Sum(nil)), checkNotGrown(src, size)
	}

	type chunk struct{ off, n int64 }
	chunks := make(chan chunk, 2)
	hashed := make(chan error, 1)
	hctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		var err error
		for c := range chunks {
			if err == nil {
				err = hashRange(hctx, h, dst, c.off, c.n)
			}
		}
		hashed <- err
	}()

	var off int64
	var copyErr error
	for off < size {
		if err := ctx.Err(); err != nil {
			copyErr = err
			break
		}
		n, err := io.Copy(dst, io.LimitReader(src, min(copyChunk, size-off)))
		if n > 0 {
			// Start writing this chunk to disk now, so the fsync at the end finds little left
			// to do: the disk works while the next chunks are copied and hashed.
			_ = unix.SyncFileRange(int(dst.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
			chunks <- chunk{off, n}
			off += n
		}
		if err != nil {
			copyErr = err
			break
		}
		if n == 0 {
			copyErr = fmt.Errorf("%w: source ended after %d of %d bytes", ErrChanged, off, size)
			break
		}
	}
	close(chunks)
	hashErr := <-hashed
	if copyErr != nil {
		return "", copyErr
	}
	if hashErr != nil {
		return "", hashErr
	}
	if err := checkNotGrown(src, size); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// copyRange copies exactly n bytes from src's offset to dst's (both at off).
func copyRange(dst, src *os.File, off, n int64) error {
	got, err := io.Copy(dst, io.LimitReader(src, n))
	if err != nil {
		return err
	}
	if got < n {
		return fmt.Errorf("%w: source ended after %d of %d bytes", ErrChanged, off+got, off+n)
	}
	return nil
}

// checkNotGrown refuses a source that grew while it was copied: the copy would be a prefix,
// neither the old file nor the new one.
func checkNotGrown(src *os.File, size int64) error {
	var one [1]byte
	if n, _ := src.Read(one[:]); n > 0 {
		return fmt.Errorf("%w: source grew beyond %d bytes while copying", ErrChanged, size)
	}
	return nil
}

// mmapMin is the size from which hashing maps the file instead of reading it: mapping the page
// cache saves copying every byte into a buffer first, which for large files is the difference
// between keeping up with the kernel's copy and trailing it.
const mmapMin = 256 << 10

// hashRange feeds f[off:off+n] into h, reading through the page cache the copy just filled.
// off is a multiple of copyChunk (page-aligned) whenever n is at least mmapMin.
func hashRange(ctx context.Context, h hash.Hash, f *os.File, off, n int64) error {
	for n >= mmapMin && off%int64(os.Getpagesize()) == 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		w := min(n, copyChunk)
		m, err := unix.Mmap(int(f.Fd()), off, int(w), unix.PROT_READ, unix.MAP_SHARED|unix.MAP_POPULATE)
		if err != nil {
			break // fall back to reading
		}
		_ = unix.Madvise(m, unix.MADV_SEQUENTIAL)
		h.Write(m)
		if err := unix.Munmap(m); err != nil {
			return err
		}
		off += w
		n -= w
	}
	buf := make([]byte, min(n, 1<<20))
	for n > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		m, err := f.ReadAt(buf[:min(int64(len(buf)), n)], off)
		h.Write(buf[:m])
		off += int64(m)
		n -= int64(m)
		if err != nil && !(errors.Is(err, io.EOF) && n == 0) {
			return err
		}
	}
	return nil
}

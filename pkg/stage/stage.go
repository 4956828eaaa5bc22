// Package stage copies dataset files from the read-only snapshot share into the owner's staging
// folder, where app containers read them, and deletes the copies when their TTL ends.
//
// Layout (sidecar's view):
//
//	{staging}/{env}/{owner}/{caller}/{name}   the copy; app containers mount {env}/{owner} (app,
//	                                          job) or {env}/{owner}/{owner} (workspace) read-only
//	{staging}/.warden-tmp/{name}              copies in progress, renamed into place when complete
//	{state}/{name}.json                       metadata, where app containers cannot reach
//
// {owner} is "namespace.serviceaccount"; {caller} is the owner's own folder when the app acts for
// itself and "user=NAME" for a user, so the two can never collide.
package stage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/warden-dev/warden/pkg/api"
	"github.com/warden-dev/warden/pkg/audit"
)

// Errors, each mapped to one HTTP status by the sidecar.
var (
	ErrBadPath    = errors.New("bad path")
	ErrBadRequest = errors.New("bad request")
	ErrNotFound   = errors.New("not found")
	ErrNotRegular = errors.New("not a regular file")
	ErrQuota      = errors.New("staging quota exceeded")
	ErrNoSpace    = errors.New("no space left for staging")
	ErrChanged    = errors.New("source changed while staging")
	ErrForbidden  = errors.New("forbidden")
)

// Config of a Stager.
type Config struct {
	SnapshotRoot string
	StagingRoot  string
	StateDir     string
	Owner        string // namespace/serviceaccount
	Environment  string
	Workload     api.Workload
	// DataDir is where app containers see the owner's staging folder (WARDEN_DATA_DIR).
	DataDir    string
	DefaultTTL time.Duration
	MaxTTL     time.Duration
	// QuotaBytes bounds the bytes staged at once for the owner (0: unlimited).
	QuotaBytes int64
	// AllowHardlinks accepts source files with more than one link. Off by default: a hard link
	// inside a snapshot can name a file that lives outside it, which no path check can see. Turn
	// it on for snapshot stores that deduplicate with hard links.
	AllowHardlinks bool
}

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

// Request asks for one copy.
type Request struct {
	Dataset     string
	Snapshot    string // name, "" for the head
	SnapshotDir string // resolved by the grant
	Path        string
	Caller      string // caller name for metadata and audit
	CallerDir   string // from CallerDir
	TTL         time.Duration
}

// Entry is one item of a folder listing.
type Entry struct {
	Name    string    `json:"name"`
	Size    int64     `json:"size"`
	Dir     bool      `json:"dir"`
	ModTime time.Time `json:"mod_time"`
}

// MaxEntries bounds a listing.
const MaxEntries = 10000

// Stager owns one owner's staging folder.
type Stager struct {
	cfg      Config
	ownerDir string
	log      *slog.Logger
	audit    *audit.Logger
	now      func() time.Time

	mu    sync.Mutex
	files map[string]*Meta
	usage int64
	queue expiryQueue
	wake  chan struct{}
}

// CallerDir is the folder of a caller under the owner's folder.
func CallerDir(owner, user string) string {
	if user == "" {
		return api.OwnerDir(owner)
	}
	return "user=" + user
}

func (s *Stager) tmpDir() string { return filepath.Join(s.cfg.StagingRoot, ".warden-tmp") }
func (s *Stager) ownerRoot() string {
	return filepath.Join(s.cfg.StagingRoot, s.cfg.Environment, s.ownerDir)
}
func (s *Stager) metaPath(name string) string {
	return filepath.Join(s.cfg.StateDir, name+".json")
}

// New prepares the staging folder and recovers from whatever a previous run left: metadata is
// read back into the expiry schedule (so a kill -9 loses no deadline), copies without metadata,
// metadata without copies and half-written copies are removed.
func New(cfg Config, auditLog *audit.Logger, log *slog.Logger) (*Stager, error) {
	if cfg.DefaultTTL <= 0 {
		cfg.DefaultTTL = 300 * time.Second
	}
	if cfg.MaxTTL < cfg.DefaultTTL {
		cfg.MaxTTL = cfg.DefaultTTL
	}
	if cfg.DataDir == "" {
		cfg.DataDir = api.DataDir
	}
	if cfg.Workload == "" {
		cfg.Workload = api.WorkloadApp
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Stager{cfg: cfg, ownerDir: api.OwnerDir(cfg.Owner), log: log, audit: auditLog, now: time.Now,
		files: map[string]*Meta{}, wake: make(chan struct{}, 1)}
	for _, d := range []string{cfg.SnapshotRoot, cfg.StagingRoot, cfg.StateDir} {
		if d == "" {
			return nil, errors.New("stage: snapshot root, staging root and state dir are required")
		}
	}
	if _, err := os.Stat(cfg.SnapshotRoot); err != nil {
		return nil, fmt.Errorf("stage: snapshot root: %w", err)
	}
	if err := os.RemoveAll(s.tmpDir()); err != nil {
		return nil, fmt.Errorf("stage: clearing unfinished copies: %w", err)
	}
	for _, d := range []string{s.tmpDir(), s.ownerRoot(), filepath.Join(s.ownerRoot(), s.ownerDir), cfg.StateDir} {
		if err := mkdirReadable(d); err != nil {
			return nil, fmt.Errorf("stage: %w", err)
		}
	}
	if err := s.recover(); err != nil {
		return nil, err
	}
	return s, nil
}

// mkdirReadable creates d (and parents) so that app containers, which run as other users, can
// read and traverse it; the umask must not take that away. A directory that already grants that
// is left alone: volume roots are made by the kubelet (root-owned, 0777 for an emptyDir), and the
// sidecar, non-root without capabilities, may not chmod them.
func mkdirReadable(d string) error {
	if err := os.MkdirAll(d, 0o755); err != nil {
		return err
	}
	fi, err := os.Stat(d)
	if err != nil {
		return err
	}
	if fi.Mode().Perm()&0o755 == 0o755 {
		return nil
	}
	if err := os.Chmod(d, fi.Mode().Perm()|0o755); err != nil {
		return fmt.Errorf("%s is mode %v and cannot be made readable by app containers: %w", d, fi.Mode().Perm(), err)
	}
	return nil
}

func (s *Stager) recover() error {
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
		s.files[name] = m
		s.usage += m.Size
		s.queue.push(m.ExpiresAt, name)
	}
	// Copies nobody knows about (their metadata was lost) are removed, as are empty caller
	// folders; the owner's own folder stays because app containers mount it.
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
			if m, ok := s.files[f.Name()]; !ok || m.Target != filepath.Join(dir, f.Name()) {
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

// writeMeta writes metadata atomically: a reader (or a restart) sees the old file or the new
// one, never a torn one.
func (s *Stager) writeMeta(m *Meta) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(s.cfg.StateDir, ".meta-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), s.metaPath(m.Name))
}

// TTL clamps a requested TTL: 0 means the default, more than the maximum means the maximum.
func (s *Stager) TTL(requested time.Duration) (time.Duration, error) {
	switch {
	case requested < 0:
		return 0, fmt.Errorf("%w: ttl_seconds must not be negative", ErrBadRequest)
	case requested == 0:
		return s.cfg.DefaultTTL, nil
	case requested > s.cfg.MaxTTL:
		return s.cfg.MaxTTL, nil
	}
	return requested, nil
}

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

// Stage copies one file into the caller's folder.
func (s *Stager) Stage(ctx context.Context, req Request) (*Meta, error) {
	ttl, err := s.TTL(req.TTL)
	if err != nil {
		return nil, err
	}
	rel, err := CleanRelPath(req.Path, false)
	if err != nil {
		return nil, err
	}
	if req.CallerDir == "" || strings.ContainsAny(req.CallerDir, "/\x00") || req.CallerDir == "." || req.CallerDir == ".." {
		return nil, fmt.Errorf("%w: bad caller folder", ErrBadRequest)
	}
	if s.cfg.Workload == api.WorkloadWorkspace && req.CallerDir != s.ownerDir {
		return nil, fmt.Errorf("%w: a workspace stages files only for its owner (its app containers see no other folder)", ErrForbidden)
	}
	root, err := s.openSnapshot(req.SnapshotDir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	// O_NONBLOCK: opening a FIFO planted in the share must not hang the request.
	src, err := root.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, openErr(rel, err)
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %q is a %s", ErrNotRegular, rel, describe(fi.Mode()))
	}
	if err := s.checkSameFile(root, rel, fi); err != nil {
		return nil, err
	}
	size := fi.Size()
	if err := s.reserve(size); err != nil {
		return nil, err
	}
	reserved := true
	defer func() {
		if reserved {
			s.release(size)
		}
	}()

	name, err := newName(rel)
	if err != nil {
		return nil, err
	}
	callerDir := filepath.Join(s.ownerRoot(), req.CallerDir)
	if err := mkdirReadable(callerDir); err != nil {
		return nil, storageErr(err)
	}
	tmpPath := filepath.Join(s.tmpDir(), name)
	tmp, err := os.OpenFile(tmpPath, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, storageErr(err)
	}
	cleanup := func() { tmp.Close(); _ = os.Remove(tmpPath) }
	if err := tmp.Chmod(0o644); err != nil {
		cleanup()
		return nil, storageErr(err)
	}
	sum, err := copyFile(ctx, tmp, src, size)
	if err == nil {
		err = tmp.Sync()
	}
	if err != nil {
		cleanup()
		return nil, storageErr(err)
	}
	if err := tmp.Close(); err != nil {
		_ = os.Remove(tmpPath)
		return nil, storageErr(err)
	}

	now := s.now().UTC()
	target := filepath.Join(callerDir, name)
	m := &Meta{
		Name: name, Dataset: req.Dataset, Snapshot: req.Snapshot, SnapshotDir: req.SnapshotDir,
		Source: rel, Target: target, AppPath: s.appPath(req.CallerDir, name),
		Owner: s.cfg.Owner, Caller: req.Caller, CallerDir: req.CallerDir,
		TTLSeconds: int64(ttl / time.Second), Created: now, ExpiresAt: now.Add(ttl),
		Size: size, SHA256: sum,
	}
	// Metadata first: if the process dies between the two steps, recovery finds metadata
	// without a copy and drops it; a visible copy always has a deadline.
	if err := s.writeMeta(m); err != nil {
		_ = os.Remove(tmpPath)
		return nil, storageErr(err)
	}
	if err := os.Rename(tmpPath, target); err != nil {
		_ = os.Remove(tmpPath)
		_ = os.Remove(s.metaPath(name))
		return nil, storageErr(err)
	}
	syncDir(callerDir)
	reserved = false
	s.track(m)
	return m, nil
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

// storageErr maps a full disk or quota to ErrNoSpace.
func storageErr(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %v", ErrNoSpace, err)
	}
	return err
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// appPath is where app containers find a copy: their mount is the owner's folder (app, job) or
// the owner's own caller folder (workspace).
func (s *Stager) appPath(callerDir, name string) string {
	if s.cfg.Workload == api.WorkloadWorkspace {
		return path.Join(s.cfg.DataDir, name)
	}
	return path.Join(s.cfg.DataDir, callerDir, name)
}

func newName(rel string) (string, error) {
	var b [10]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]) + "-" + baseName(rel), nil
}

func (s *Stager) reserve(n int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg.QuotaBytes > 0 && s.usage+n > s.cfg.QuotaBytes {
		return fmt.Errorf("%w: %d bytes staged, %d more would exceed the owner's quota of %d bytes; delete staged copies or wait for them to expire", ErrQuota, s.usage, n, s.cfg.QuotaBytes)
	}
	s.usage += n
	return nil
}

func (s *Stager) release(n int64) {
	s.mu.Lock()
	s.usage -= n
	s.mu.Unlock()
}

func (s *Stager) track(m *Meta) {
	s.mu.Lock()
	s.files[m.Name] = m
	first := s.queue.push(m.ExpiresAt, m.Name)
	s.mu.Unlock()
	if first {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// Usage reports staged bytes and copies.
func (s *Stager) Usage() (bytes int64, files int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.usage, len(s.files)
}

// Delete removes a copy before its TTL. Only the caller it was staged for may delete it; to
// anyone else it does not exist.
func (s *Stager) Delete(name, callerDir string) (*Meta, error) {
	if err := ValidStagedName(name); err != nil {
		return nil, err
	}
	s.mu.Lock()
	m, ok := s.files[name]
	if !ok || m.CallerDir != callerDir {
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: no staged copy %q for this caller", ErrNotFound, name)
	}
	delete(s.files, name)
	s.usage -= m.Size
	s.mu.Unlock()
	s.remove(m)
	return m, nil
}

func (s *Stager) remove(m *Meta) {
	if err := os.Remove(m.Target); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Error("removing staged copy", "target", m.Target, "error", err)
	}
	if err := os.Remove(s.metaPath(m.Name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Error("removing staging metadata", "name", m.Name, "error", err)
	}
	s.removeIfEmpty(m.CallerDir)
}

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

// Run deletes copies as they expire until ctx ends. It sleeps until the earliest deadline (not
// a periodic scan), so copies disappear on time.
func (s *Stager) Run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		s.expire()
		s.mu.Lock()
		next, ok := s.queue.peek()
		s.mu.Unlock()
		wait := time.Hour
		if ok {
			wait = max(0, next.Sub(s.now()))
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
	now := s.now()
	for {
		s.mu.Lock()
		at, ok := s.queue.peek()
		if !ok || at.After(now) {
			s.mu.Unlock()
			return
		}
		name := s.queue.pop()
		m, live := s.files[name]
		if live && !m.ExpiresAt.After(now) {
			delete(s.files, name)
			s.usage -= m.Size
		} else {
			live = false // deleted early, or rescheduled
		}
		s.mu.Unlock()
		if live {
			s.remove(m)
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

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
//
// The files follow the life of a copy: stage.go (configuration and the steps of Stage),
// source.go (opening a file inside a snapshot), quota.go, copy.go (the byte copy and its hash),
// publish.go (the order of writes, fsyncs and renames that makes a copy visible, and why it is
// crash safe), meta.go (metadata on disk and recovery after a restart), janitor.go and entry.go
// (deletion and expiry, scheduled by queue.go), list.go (snapshot listings), paths.go (what
// names and paths may look like).
package stage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/warden-dev/warden/pkg/audit"
	"github.com/warden-dev/warden/pkg/contract"
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
	Workload     contract.Workload
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
	// NoSync makes a copy visible as soon as the kernel holds it, without waiting for the disk
	// (publish.go). Only for a sidecar that is ready before any app container starts (a native
	// sidecar): after a node restart, recovery then checks every copy against its metadata
	// before the sidecar is ready, and no app container can have read one before that.
	NoSync bool
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

// Stager owns one owner's staging folder.
type Stager struct {
	cfg      Config
	ownerDir string
	log      *slog.Logger
	audit    *audit.Logger
	now      func() time.Time

	mu sync.Mutex
	// files holds a small entry per published copy, not its Meta: a copy lives for its TTL,
	// so thousands can be tracked at once, and the rest of what is known about it is on disk.
	files map[string]entry
	usage int64
	queue expiryQueue
	wake  chan struct{}
	dirs  dirSyncer
	// flushes are the folder fsyncs still running after their stage answered (publish.go).
	flushes sync.WaitGroup
}

// CallerDir is the folder of a caller under the owner's folder.
func CallerDir(owner, user string) string {
	if user == "" {
		return contract.OwnerDir(owner)
	}
	return "user=" + user
}

func (s *Stager) tmpDir() string { return filepath.Join(s.cfg.StagingRoot, ".warden-tmp") }
func (s *Stager) ownerRoot() string {
	return filepath.Join(s.cfg.StagingRoot, s.cfg.Environment, s.ownerDir)
}

// appPath is where app containers find a copy: their mount is the owner's folder (app, job) or
// the owner's own caller folder (workspace).
func (s *Stager) appPath(callerDir, name string) string {
	if s.cfg.Workload == contract.WorkloadWorkspace {
		return path.Join(s.cfg.DataDir, name)
	}
	return path.Join(s.cfg.DataDir, callerDir, name)
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
		cfg.DataDir = contract.DataDir
	}
	if cfg.Workload == "" {
		cfg.Workload = contract.WorkloadApp
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Stager{cfg: cfg, ownerDir: contract.OwnerDir(cfg.Owner), log: log, audit: auditLog, now: time.Now,
		files: map[string]entry{}, wake: make(chan struct{}, 1)}
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

// Stage copies one file into the caller's folder. A step that fails undoes what the earlier ones
// did (quota, temporary copy, metadata), so a failed stage leaves nothing an app can see and
// nothing the janitor would have to find.
func (s *Stager) Stage(ctx context.Context, req Request) (*Meta, error) {
	ttl, rel, err := s.checkRequest(req)
	if err != nil {
		return nil, err
	}
	src, size, err := s.openSource(req.SnapshotDir, rel)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	// Quota is held from before the first byte is written, so concurrent stages cannot together
	// overshoot it; it passes to the tracked copy only once the copy is published.
	held, err := s.reserve(size)
	if err != nil {
		return nil, err
	}
	defer held.cancel()

	name, err := newName(rel)
	if err != nil {
		return nil, err
	}
	callerDir := filepath.Join(s.ownerRoot(), req.CallerDir)
	if err := mkdirReadable(callerDir); err != nil {
		return nil, storageErr(err)
	}
	tmp, sum, err := s.copyToTemp(ctx, src, size, name)
	if err != nil {
		return nil, err
	}
	m := s.newMeta(req, rel, name, ttl, size, sum)
	if err := s.publish(m, tmp); err != nil {
		return nil, err
	}
	held.keep()
	s.track(m)
	return m, nil
}

// checkRequest validates what the caller asked for before anything is opened: the TTL, the path
// inside the snapshot and the caller's folder, which becomes a path element and so must be one.
func (s *Stager) checkRequest(req Request) (time.Duration, string, error) {
	ttl, err := s.TTL(req.TTL)
	if err != nil {
		return 0, "", err
	}
	rel, err := CleanRelPath(req.Path, false)
	if err != nil {
		return 0, "", err
	}
	if req.CallerDir == "" || strings.ContainsAny(req.CallerDir, "/\x00") || req.CallerDir == "." || req.CallerDir == ".." {
		return 0, "", fmt.Errorf("%w: bad caller folder", ErrBadRequest)
	}
	if s.cfg.Workload == contract.WorkloadWorkspace && req.CallerDir != s.ownerDir {
		return 0, "", fmt.Errorf("%w: a workspace stages files only for its owner (its app containers see no other folder)", ErrForbidden)
	}
	return ttl, rel, nil
}

// newName makes a staged file's name: random, so names cannot be guessed or collide, and ending
// in the source's base name, so apps (and pandas) still see the extension.
func newName(rel string) (string, error) {
	var b [10]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]) + "-" + baseName(rel), nil
}

// newMeta describes a copy about to be published: its deadline counts from now, not from when
// the request arrived, so a slow copy does not eat into the caller's TTL.
func (s *Stager) newMeta(req Request, rel, name string, ttl time.Duration, size int64, sum string) *Meta {
	now := s.now().UTC()
	return &Meta{
		Name: name, Dataset: req.Dataset, Snapshot: req.Snapshot, SnapshotDir: req.SnapshotDir,
		Source: rel, Target: filepath.Join(s.ownerRoot(), req.CallerDir, name), AppPath: s.appPath(req.CallerDir, name),
		Owner: s.cfg.Owner, Caller: req.Caller, CallerDir: req.CallerDir,
		TTLSeconds: int64(ttl / time.Second), Created: now, ExpiresAt: now.Add(ttl),
		Size: size, SHA256: sum,
	}
}

// storageErr maps a full disk or quota to ErrNoSpace.
func storageErr(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %v", ErrNoSpace, err)
	}
	return err
}

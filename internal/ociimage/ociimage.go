// Package ociimage writes FROM-scratch container images from files on this machine, without a
// Docker daemon or a registry: one layer, written with go-containerregistry as a docker-archive
// tarball, which `ctr images import`, `docker load` and `crane push` all read.
//
// Images are reproducible: every timestamp is Created (the Unix epoch unless set), every file
// belongs to root, entries are sorted, so the same inputs always give the same image digest.
package ociimage

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// CARoots is where Debian's ca-certificates keeps the bundle, and where Go's crypto/x509 looks
// for it first on Linux; images carry it at the same path.
const CARoots = "/etc/ssl/certs/ca-certificates.crt"

// NonRoot is the user and group Warden's images run as (distroless's "nonroot").
const NonRoot = "65532:65532"

// File is one regular file of the image.
type File struct {
	// Path inside the image, absolute.
	Path string
	// Src is the file on this machine to copy; Data is used when Src is empty.
	Src  string
	Data []byte
	// Mode defaults to 0755 (the image's files are executables or read-only data owned by
	// root, so non-root users can read but never change them).
	Mode int64
}

// Spec describes an image.
type Spec struct {
	// Ref names the image in the tarball (RepoTags), e.g. ghcr.io/warden-dev/warden-sidecar:v1.
	Ref        string
	Files      []File
	Entrypoint []string
	Cmd        []string
	User       string
	Env        []string
	Labels     map[string]string
	// Arch is the image's architecture (default: this machine's, which is what `go build`
	// produces without GOARCH).
	Arch string
	// Created stamps the config, the history and every tar entry (default: the Unix epoch).
	Created time.Time
}

// Binary is the spec of an image holding one static executable at /NAME, its entrypoint,
// running as NonRoot.
func Binary(ref, bin string) Spec {
	p := "/" + filepath.Base(bin)
	return Spec{
		Ref:        ref,
		Files:      []File{{Path: p, Src: bin, Mode: 0o755}},
		Entrypoint: []string{p},
		User:       NonRoot,
	}
}

// WithCARoots adds the CA bundle at CARoots, copied from src (normally CARoots itself).
func (s Spec) WithCARoots(src string) Spec {
	s.Files = append(append([]File(nil), s.Files...), File{Path: CARoots, Src: src, Mode: 0o644})
	return s
}

// Build makes the image in memory.
func Build(s Spec) (v1.Image, error) {
	if s.Ref == "" {
		return nil, errors.New("ociimage: no image reference")
	}
	created := s.Created
	if created.IsZero() {
		created = time.Unix(0, 0)
	}
	created = created.UTC()
	layerTar, err := layer(s.Files, created)
	if err != nil {
		return nil, err
	}
	// The layer is gzipped once (compress/gzip is deterministic) and kept for both the digest
	// and the write.
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithCompressedCaching)
	if err != nil {
		return nil, err
	}
	arch := s.Arch
	if arch == "" {
		arch = runtime.GOARCH
	}
	img, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{
		Architecture: arch,
		OS:           "linux",
		Created:      v1.Time{Time: created},
		Config: v1.Config{
			Entrypoint: s.Entrypoint,
			Cmd:        s.Cmd,
			User:       s.User,
			Env:        s.Env,
			Labels:     s.Labels,
			WorkingDir: "/",
		},
		RootFS: v1.RootFS{Type: "layers"},
	})
	if err != nil {
		return nil, err
	}
	return mutate.Append(img, mutate.Addendum{
		Layer:   l,
		History: v1.History{Created: v1.Time{Time: created}, CreatedBy: "warden ociimage", Comment: s.Ref},
	})
}

// layer is the uncompressed tar of the files and the directories above them.
func layer(files []File, mtime time.Time) ([]byte, error) {
	sorted := append([]File(nil), files...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Path < sorted[j].Path })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	for _, f := range sorted {
		if !path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path || f.Path == "/" {
			return nil, fmt.Errorf("ociimage: image path %q must be absolute and clean", f.Path)
		}
		// Parent directories first, each once, outermost first.
		var parents []string
		for d := path.Dir(f.Path); d != "/"; d = path.Dir(d) {
			parents = append([]string{d}, parents...)
		}
		for _, d := range parents {
			if dirs[d] {
				continue
			}
			dirs[d] = true
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d[1:] + "/", Mode: 0o755, ModTime: mtime}); err != nil {
				return nil, err
			}
		}
		data := f.Data
		if f.Src != "" {
			var err error
			if data, err = os.ReadFile(f.Src); err != nil {
				return nil, err
			}
		}
		mode := f.Mode
		if mode == 0 {
			mode = 0o755
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.Path[1:], Mode: mode, Size: int64(len(data)), ModTime: mtime}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Result describes a written image.
type Result struct {
	Ref  string
	Path string
	// Digest is the manifest digest (what a registry would name the image by); ID is the
	// config digest (what `docker images` and `ctr images ls` show as the image ID).
	Digest, ID v1.Hash
	// CompressedSize is the sum of the gzipped layers: what a node downloads.
	CompressedSize int64
}

// Write builds the image and writes it to file as a docker-archive tarball, atomically.
func Write(file string, s Spec) (*Result, error) {
	ref, err := name.NewTag(s.Ref)
	if err != nil {
		return nil, fmt.Errorf("ociimage: %w", err)
	}
	img, err := Build(s)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return nil, err
	}
	tmp := file + ".tmp"
	if err := tarball.WriteToFile(tmp, ref, img); err != nil {
		os.Remove(tmp)
		return nil, err
	}
	if err := os.Rename(tmp, file); err != nil {
		return nil, err
	}
	return Describe(img, s.Ref, file)
}

// Describe reports an image's digests and compressed size.
func Describe(img v1.Image, ref, file string) (*Result, error) {
	r := &Result{Ref: ref, Path: file}
	var err error
	if r.Digest, err = img.Digest(); err != nil {
		return nil, err
	}
	if r.ID, err = img.ConfigName(); err != nil {
		return nil, err
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	for _, l := range layers {
		n, err := l.Size()
		if err != nil {
			return nil, err
		}
		r.CompressedSize += n
	}
	return r, nil
}

// FileName is a file name for an image reference (ghcr.io/a/b:v1 -> ghcr.io_a_b_v1.tar).
func FileName(ref string) string {
	return strings.NewReplacer("/", "_", ":", "_", "@", "_").Replace(ref) + ".tar"
}

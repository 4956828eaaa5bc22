package ociimage

import (
	"archive/tar"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o700); err != nil {
		t.Fatal(err)
	}
	return p
}

func fileSum(t *testing.T, p string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// The same inputs give the same image digest and the same tarball, byte for byte, whatever the
// source files' timestamps, modes and owners; another input gives another digest.
func TestReproducible(t *testing.T) {
	dir := t.TempDir()
	bin := writeFile(t, dir, "warden-sidecar", "#!binary v1")
	ca := writeFile(t, dir, "ca.crt", "-----BEGIN CERTIFICATE-----\n")
	spec := Binary("ghcr.io/warden-dev/warden-sidecar:test", bin).WithCARoots(ca)

	a, err := Write(filepath.Join(dir, "a.tar"), spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(bin, time.Unix(1e9, 0), time.Unix(2e9, 0)); err != nil { // a rebuild touches the binary
		t.Fatal(err)
	}
	b, err := Write(filepath.Join(dir, "b.tar"), spec)
	if err != nil {
		t.Fatal(err)
	}
	if a.Digest != b.Digest || a.ID != b.ID || a.CompressedSize != b.CompressedSize {
		t.Fatalf("same input, different images: %+v vs %+v", a, b)
	}
	if fileSum(t, a.Path) != fileSum(t, b.Path) {
		t.Fatal("same input, different tarballs")
	}

	writeFile(t, dir, "warden-sidecar", "#!binary v2")
	c, err := Write(filepath.Join(dir, "c.tar"), spec)
	if err != nil {
		t.Fatal(err)
	}
	if c.Digest == a.Digest {
		t.Fatal("changed binary, same digest")
	}
}

// The tarball reads back as the image described: entrypoint, user, epoch timestamps, and only
// the binary and the CA bundle, owned by root.
func TestContents(t *testing.T) {
	dir := t.TempDir()
	bin := writeFile(t, dir, "warden-webhook", "binary")
	ca := writeFile(t, dir, "ca.crt", "roots")
	res, err := Write(filepath.Join(dir, "img.tar"), Binary("example.com/w:1", bin).WithCARoots(ca))
	if err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(res.Path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := img.Digest(); d != res.Digest {
		t.Errorf("digest read back %s, written %s", d, res.Digest)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.Config.Entrypoint, []string{"/warden-webhook"}) || cfg.Config.User != NonRoot || cfg.OS != "linux" {
		t.Errorf("config %+v", cfg.Config)
	}
	if cfg.Created.Unix() != 0 {
		t.Errorf("created %v, want the epoch", cfg.Created)
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	got := map[string]int64{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Uid != 0 || h.Gid != 0 || h.ModTime.Unix() != 0 {
			t.Errorf("%s: uid %d gid %d mtime %v", h.Name, h.Uid, h.Gid, h.ModTime)
		}
		got[h.Name] = h.Mode
	}
	want := map[string]int64{"etc": 0o755, "etc/ssl": 0o755, "etc/ssl/certs": 0o755,
		"etc/ssl/certs/ca-certificates.crt": 0o644, "warden-webhook": 0o755}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("files %v, want %v", got, want)
	}
}

func TestRejectsRelativePaths(t *testing.T) {
	if _, err := Build(Spec{Ref: "x:1", Files: []File{{Path: "etc/x"}}}); err == nil {
		t.Fatal("relative image path accepted")
	}
}

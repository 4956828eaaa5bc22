// Command images writes Warden's container images as docker-archive tarballs from the static
// binaries `make build` leaves in bin/, without a Docker daemon (`make images`):
//
//	bin/images/warden-webhook.tar   /warden-webhook + CA roots, user 65532
//	bin/images/warden-sidecar.tar   /warden-sidecar + CA roots, user 65532 (its exec probe is
//	                                the binary itself: `warden-sidecar probe URL`)
//
// Load them with `ctr -n k8s.io images import FILE`, `docker load -i FILE` or push them with
// `crane push FILE REF`. Same binaries, same digests: every timestamp is SOURCE_DATE_EPOCH
// (default 0).
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/warden-dev/warden/internal/ociimage"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "images:", err)
		os.Exit(1)
	}
}

func run() error {
	out := flag.String("out", "bin/images", "output directory")
	version := flag.String("version", "dev", "version label (org.opencontainers.image.version)")
	webhookImage := flag.String("webhook-image", "ghcr.io/warden-dev/warden-webhook:dev", "webhook image reference")
	sidecarImage := flag.String("sidecar-image", "ghcr.io/warden-dev/warden-sidecar:dev", "sidecar image reference")
	webhookBin := flag.String("webhook-bin", "bin/warden-webhook", "static webhook binary")
	sidecarBin := flag.String("sidecar-bin", "bin/warden-sidecar", "static sidecar binary")
	caRoots := flag.String("ca-roots", ociimage.CARoots, "CA bundle to put at "+ociimage.CARoots+" (Debian: ca-certificates)")
	flag.Parse()

	created := time.Unix(0, 0)
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("SOURCE_DATE_EPOCH=%q: %w", s, err)
		}
		created = time.Unix(sec, 0)
	}
	if _, err := os.Stat(*caRoots); err != nil {
		return fmt.Errorf("CA roots: %w (apt-get install ca-certificates)", err)
	}
	for _, img := range []struct{ file, ref, bin string }{
		{"warden-webhook.tar", *webhookImage, *webhookBin},
		{"warden-sidecar.tar", *sidecarImage, *sidecarBin},
	} {
		start := time.Now()
		spec := ociimage.Binary(img.ref, img.bin).WithCARoots(*caRoots)
		spec.Created = created
		spec.Labels = map[string]string{
			"org.opencontainers.image.source":  "https://github.com/warden-dev/warden",
			"org.opencontainers.image.version": *version,
		}
		res, err := ociimage.Write(filepath.Join(*out, img.file), spec)
		if err != nil {
			return fmt.Errorf("%s: %w", img.ref, err)
		}
		fmt.Printf("%s\t%s\tdigest %s\tcompressed %.1f MB\tbuilt in %v\n", res.Path, res.Ref, res.Digest,
			float64(res.CompressedSize)/1e6, time.Since(start).Round(time.Millisecond))
	}
	return nil
}

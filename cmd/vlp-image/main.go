// Command vlp-image writes vlp's control-plane container image as a tarball, with no Docker
// daemon (package image): `make image` runs it on a vlp built with CGO_ENABLED=0.
//
//	vlp-image --binary build/image/vlp --out build/image/vlp-control.tar --tag ghcr.io/e2evlp/vlp-control:0.1.0-dev
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/e2evlp/vlp/image"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "vlp-image:", err)
		os.Exit(1)
	}
}

func run() error {
	binary := flag.String("binary", "", "the vlp executable to put in the image (required)")
	out := flag.String("out", "build/image/vlp-control.tar", "the tarball to write")
	repo := flag.String("repository", "ghcr.io/e2evlp/vlp-control", "the image's repository; the tag is the binary's version unless --tag")
	tag := flag.String("tag", "", "the image's tag (default: what `vlp version` prints)")
	revision := flag.String("revision", "", "the source revision to label the image with")
	flag.Parse()
	if *binary == "" {
		flag.Usage()
		return fmt.Errorf("--binary is required")
	}
	version, err := image.BinaryVersion(*binary)
	if err != nil {
		return err
	}
	cfg := image.DefaultConfig(*binary, version)
	cfg.Revision = *revision
	img, err := image.Build(cfg)
	if err != nil {
		return err
	}
	if *tag == "" {
		*tag = version
	}
	ref := *repo + ":" + *tag
	if err := image.WriteTarball(*out, ref, img); err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return fmt.Errorf("digest: %w", err)
	}
	fmt.Printf("%s: %s %s\n", *out, ref, digest)
	return nil
}

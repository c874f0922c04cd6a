package image

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// WriteTarball writes img as a tarball tagged tag (e.g. ghcr.io/e2evlp/vlp-control:0.1.0),
// creating the file's directory.
func WriteTarball(path, tag string, img v1.Image) error {
	ref, err := name.NewTag(tag)
	if err != nil {
		return fmt.Errorf("image: tag %q: %w", tag, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("image: %w", err)
	}
	if err := tarball.WriteToFile(path, ref, img); err != nil {
		return fmt.Errorf("image: write %s: %w", path, err)
	}
	return nil
}

// Read reads the image tagged tag back from a tarball WriteTarball wrote.
func Read(path, tag string) (v1.Image, error) {
	ref, err := name.NewTag(tag)
	if err != nil {
		return nil, fmt.Errorf("image: tag %q: %w", tag, err)
	}
	img, err := tarball.ImageFromPath(path, &ref)
	if err != nil {
		return nil, fmt.Errorf("image: read %s: %w", path, err)
	}
	return img, nil
}

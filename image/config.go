package image

import (
	"errors"
	"fmt"
	"runtime"
	"time"
)

// Where things are in the image, and who runs it. The chart's pods name BinaryPath as their
// command and run as User; the tests of both check it.
const (
	BinaryPath = "/usr/local/bin/vlp"
	User       = 65532
	UserName   = "nonroot"
)

// ErrInvalidConfig is returned by Validate, wrapped with the field that is wrong.
var ErrInvalidConfig = errors.New("image: invalid config")

// Config says what goes into the image.
type Config struct {
	// Binary is the vlp executable to put at BinaryPath (build it with CGO_ENABLED=0).
	Binary string
	// Version labels the image (org.opencontainers.image.version); `vlp version` prints it.
	Version string
	// Revision is the source revision (org.opencontainers.image.revision), if known.
	Revision string
	// Created is the image's creation time (default: the Unix epoch, so that the same inputs
	// give the same image digest).
	Created time.Time
	// Arch is the platform's architecture (default runtime.GOARCH); the binary must match it.
	Arch string
	// LibRoot is where the binary's shared libraries are looked up (default "/": the build
	// machine's own).
	LibRoot string
}

// DefaultConfig returns a Config for binary with the defaults set.
func DefaultConfig(binary, version string) Config {
	return Config{Binary: binary, Version: version, Created: time.Unix(0, 0).UTC(), Arch: runtime.GOARCH, LibRoot: "/"}
}

// Validate names the first field that is wrong.
func (c Config) Validate() error {
	switch {
	case c.Binary == "":
		return fmt.Errorf("%w: Binary: the vlp executable to put in the image is required", ErrInvalidConfig)
	case c.Version == "":
		return fmt.Errorf("%w: Version: required (it labels the image)", ErrInvalidConfig)
	case c.Arch == "":
		return fmt.Errorf("%w: Arch: required (e.g. amd64)", ErrInvalidConfig)
	case c.LibRoot == "":
		return fmt.Errorf("%w: LibRoot: required (\"/\" for this machine's libraries)", ErrInvalidConfig)
	}
	return nil
}

// Labels are the image's OCI annotations as config labels.
func (c Config) Labels() map[string]string {
	l := map[string]string{
		"org.opencontainers.image.title":       "vlp-control",
		"org.opencontainers.image.description": "vlp control plane: coordinators (Raft + embedded NATS), job submission, status; no LibTorch",
		"org.opencontainers.image.version":     c.Version,
		"org.opencontainers.image.source":      "https://github.com/e2evlp/vlp",
	}
	if c.Revision != "" {
		l["org.opencontainers.image.revision"] = c.Revision
	}
	return l
}

package image

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

const testTag = "ghcr.io/e2evlp/vlp-control:test"

// vlpBinary is the binary to put in a test image: $VLP_BIN (make test's build/bin/vlp), else
// one built for the test.
func vlpBinary(t *testing.T) string {
	t.Helper()
	if b := os.Getenv("VLP_BIN"); b != "" {
		if _, err := os.Stat(b); err == nil {
			return b
		}
	}
	out := filepath.Join(t.TempDir(), "vlp")
	if b, err := exec.Command("go", "build", "-o", out, "github.com/e2evlp/vlp/cmd/vlp").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

// TestImageRoundTrip builds the image from a vlp binary, writes it as a tarball, reads it back
// and checks it as a container runtime would run it.
func TestImageRoundTrip(t *testing.T) {
	bin := vlpBinary(t)
	version, err := BinaryVersion(bin)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig(bin, version)
	img, err := Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "vlp-control.tar")
	if err := WriteTarball(path, testTag, img); err != nil {
		t.Fatal(err)
	}
	back, err := Read(path, testTag)
	if err != nil {
		t.Fatal(err)
	}
	checkImage(t, back, version)
	// The same inputs give the same image.
	again, err := Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := img.Digest()
	d2, _ := again.Digest()
	if d1 != d2 {
		t.Errorf("two builds of the same binary: digests %s and %s", d1, d2)
	}
}

// TestImageFile checks the tarball `make image` wrote ($VLP_IMAGE, tagged $VLP_IMAGE_TAG); it
// skips when none is named.
func TestImageFile(t *testing.T) {
	path, tag := os.Getenv("VLP_IMAGE"), os.Getenv("VLP_IMAGE_TAG")
	if path == "" || tag == "" {
		t.Skip("VLP_IMAGE and VLP_IMAGE_TAG name no image (make image sets them)")
	}
	img, err := Read(path, tag)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	checkImage(t, img, cf.Config.Labels["org.opencontainers.image.version"])
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []struct {
		cfg   Config
		field string
	}{
		{Config{}, "Binary"},
		{Config{Binary: "vlp"}, "Version"},
		{Config{Binary: "vlp", Version: "1"}, "Arch"},
		{Config{Binary: "vlp", Version: "1", Arch: "amd64"}, "LibRoot"},
	} {
		err := c.cfg.Validate()
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), c.field) {
			t.Errorf("Validate(%+v) = %v, want ErrInvalidConfig naming %s", c.cfg, err, c.field)
		}
	}
	if _, err := Build(DefaultConfig(filepath.Join(t.TempDir(), "missing"), "1")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("Build with a missing binary: %v, want an error naming it", err)
	}
}

// checkImage checks the entry point, user, labels and files of img, then runs `vlp version`
// from its filesystem as its user.
func checkImage(t *testing.T, img v1.Image, version string) {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if len(c.Entrypoint) != 1 || c.Entrypoint[0] != BinaryPath {
		t.Errorf("entry point %q, want [%s]", c.Entrypoint, BinaryPath)
	}
	if c.User != "65532:65532" {
		t.Errorf("user %q, want 65532:65532 (non-root)", c.User)
	}
	if cf.OS != "linux" || cf.Architecture == "" {
		t.Errorf("platform %s/%s", cf.OS, cf.Architecture)
	}
	for k, want := range map[string]string{"org.opencontainers.image.version": version, "org.opencontainers.image.title": "vlp-control"} {
		if got := c.Labels[k]; got != want || got == "" {
			t.Errorf("label %s = %q, want %q", k, got, want)
		}
	}
	root := t.TempDir()
	if err := extract(img, root); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(root, BinaryPath))
	if err != nil || st.Mode().Perm() != 0o755 {
		t.Fatalf("%s in the image: %v, mode %v", BinaryPath, err, st)
	}
	passwd, _ := os.ReadFile(filepath.Join(root, "etc/passwd"))
	if !strings.Contains(string(passwd), "nonroot:x:65532:65532:") {
		t.Errorf("/etc/passwd has no user 65532:\n%s", passwd)
	}
	cmd := exec.Command(BinaryPath, "version")
	if os.Geteuid() == 0 {
		// As a runtime would: the image's own filesystem as root, its user, its environment.
		cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root, Credential: &syscall.Credential{Uid: 65532, Gid: 65532}}
		cmd.Dir = "/"
		cmd.Env = c.Env
	} else {
		t.Log("not root: the binary runs outside the image's filesystem (a chroot needs root)")
		cmd.Path = filepath.Join(root, BinaryPath)
	}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "vlp "+version+" ") {
		t.Errorf("vlp version in the image: %v: %q, want \"vlp %s …\"", err, out, version)
	}
}

// extract writes the image's flattened filesystem under dir.
func extract(img v1.Image, dir string) error {
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		p := filepath.Join(dir, filepath.Clean("/"+h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, os.FileMode(h.Mode).Perm()); err != nil {
				return err
			}
			if err := os.Chmod(p, os.FileMode(h.Mode)&os.ModePerm|modeBits(h.Mode)); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode).Perm())
			if err != nil {
				return err
			}
			if _, err := io.Copy(f, tr); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
		}
	}
}

// modeBits carries the sticky bit of a tar mode over to os.FileMode (/tmp is 1777).
func modeBits(mode int64) os.FileMode {
	if mode&0o1000 != 0 {
		return os.ModeSticky
	}
	return 0
}

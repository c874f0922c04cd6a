package image

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Build makes the control-plane image from cfg: one layer with the binary, its libraries, the
// user's passwd and group entries and /tmp; the entry point runs the binary as User.
func Build(cfg Config) (v1.Image, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	libs, err := Libraries(cfg.LibRoot, cfg.Binary)
	if err != nil {
		return nil, err
	}
	layer, err := rootLayer(cfg, libs)
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), layer)
	if err != nil {
		return nil, fmt.Errorf("image: add the layer: %w", err)
	}
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image: config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", cfg.Arch
	cf.Created = v1.Time{Time: cfg.Created}
	cf.Config = v1.Config{
		Entrypoint: []string{BinaryPath},
		Cmd:        []string{"--help"},
		User:       fmt.Sprintf("%d:%d", User, User),
		WorkingDir: "/",
		Env:        []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp"},
		Labels:     cfg.Labels(),
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("image: set the config: %w", err)
	}
	return img, nil
}

// rootLayer writes the layer's tar: directories first, then files, all owned by root (the
// binary is executable by anyone, and nothing in the image is writable by the user but /tmp).
func rootLayer(cfg Config, libs []string) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	mkdir := func(dir string, mode int64) error {
		if dir == "/" || dir == "." || dirs[dir] {
			return nil
		}
		dirs[dir] = true
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir[1:] + "/", Mode: mode, ModTime: cfg.Created})
	}
	parents := func(p string) error {
		var chain []string
		for d := path.Dir(p); d != "/"; d = path.Dir(d) {
			chain = append([]string{d}, chain...)
		}
		for _, d := range chain {
			if err := mkdir(d, 0o755); err != nil {
				return err
			}
		}
		return nil
	}
	file := func(p string, mode int64, r io.Reader, size int64) error {
		if err := parents(p); err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: p[1:], Mode: mode, Size: size, ModTime: cfg.Created}); err != nil {
			return err
		}
		_, err := io.Copy(tw, r)
		return err
	}
	copyFile := func(p, from string, mode int64) error {
		f, err := os.Open(from)
		if err != nil {
			return err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		return file(p, mode, f, st.Size())
	}
	text := func(p, s string) error { return file(p, 0o644, bytes.NewReader([]byte(s)), int64(len(s))) }

	if err := copyFile(BinaryPath, cfg.Binary, 0o755); err != nil {
		return nil, fmt.Errorf("image: %s: %w", cfg.Binary, err)
	}
	for _, lib := range libs {
		// Symbolic links are followed: the image holds the library under the name it is asked by.
		if err := copyFile(lib, filepath.Join(cfg.LibRoot, lib), 0o755); err != nil {
			return nil, fmt.Errorf("image: library %s: %w", lib, err)
		}
	}
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\n%s:x:%d:%d:%s:/tmp:/sbin/nologin\n", UserName, User, User, UserName)
	group := fmt.Sprintf("root:x:0:\n%s:x:%d:\n", UserName, User)
	if err := text("/etc/passwd", passwd); err != nil {
		return nil, err
	}
	if err := text("/etc/group", group); err != nil {
		return nil, err
	}
	if err := mkdir("/tmp", 0o1777); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("image: layer: %w", err)
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer))
}

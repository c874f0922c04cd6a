package image

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// libDirs are where the dynamic loader of a Debian-like system finds libraries, in its order.
var libDirs = []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"}

// Libraries returns the absolute paths (inside root) of everything the dynamic executable at
// binary needs to start: its interpreter (PT_INTERP) and its DT_NEEDED libraries, recursively,
// sorted. A static executable needs nothing. A library that cannot be found is an error naming
// it and who needs it.
func Libraries(root, binary string) ([]string, error) {
	interp, needed, err := elfDeps(binary)
	if err != nil {
		return nil, err
	}
	found := map[string]bool{}
	if interp != "" {
		found[interp] = true
		if _, err := os.Stat(filepath.Join(root, interp)); err != nil {
			return nil, fmt.Errorf("image: %s: its interpreter %s: %w", binary, interp, err)
		}
	}
	type want struct{ lib, by string }
	queue := make([]want, 0, len(needed))
	for _, n := range needed {
		queue = append(queue, want{n, binary})
	}
	seen := map[string]bool{}
	for len(queue) > 0 {
		w := queue[0]
		queue = queue[1:]
		if seen[w.lib] {
			continue
		}
		seen[w.lib] = true
		path, err := findLib(root, w.lib)
		if err != nil {
			return nil, fmt.Errorf("image: %s, needed by %s: %w", w.lib, w.by, err)
		}
		found[path] = true
		_, more, err := elfDeps(filepath.Join(root, path))
		if err != nil {
			return nil, err
		}
		for _, m := range more {
			queue = append(queue, want{m, path})
		}
	}
	out := make([]string, 0, len(found))
	for p := range found {
		out = append(out, p)
	}
	sort.Strings(out)
	return out, nil
}

// elfDeps reads an ELF file's interpreter and DT_NEEDED entries.
func elfDeps(path string) (interp string, needed []string, err error) {
	f, err := elf.Open(path)
	if err != nil {
		return "", nil, fmt.Errorf("image: %s: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err != nil {
				return "", nil, fmt.Errorf("image: %s: interpreter: %w", path, err)
			}
			interp = strings.TrimRight(string(b), "\x00")
		}
	}
	needed, err = f.ImportedLibraries()
	if err != nil && !errors.Is(err, elf.ErrNoSymbols) {
		return "", nil, fmt.Errorf("image: %s: needed libraries: %w", path, err)
	}
	return interp, needed, nil
}

func findLib(root, name string) (string, error) {
	for _, d := range libDirs {
		p := filepath.Join(d, name)
		if _, err := os.Stat(filepath.Join(root, p)); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("not found in %s under %s", strings.Join(libDirs, ", "), root)
}

package sharding

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// allShards in a test case: every shard must fail.
const allShards = -2

func TestVerify(t *testing.T) {
	coco, vg, _ := world(t)
	out := t.TempDir()
	m, _, err := build(t, coco, vg, out, nil)
	if err != nil {
		t.Fatal(err)
	}
	orig, err := os.ReadFile(filepath.Join(out, ManifestName))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		damage func(m *Manifest)
		file   func()
		shard  int
		want   error
		msg    string
	}{
		{"sound", nil, nil, -1, nil, ""},
		{"pair count", func(m *Manifest) {
			m.Shards[2].SamplePairs[1]++
			m.Shards[2].Pairs++
			m.Pairs++
		}, nil, 2, ErrCorruptShard, "manifest disagrees"},
		{"sample offset", func(m *Manifest) { m.Shards[1].SampleOffsets[3] += 512 }, nil, 1, ErrCorruptShard, "sample_offsets"},
		{"checksum", func(m *Manifest) { m.Shards[0].SHA256 = strings.Repeat("0", 64) }, nil, 0, ErrChecksum, "sha256"},
		{"class out of range", func(m *Manifest) { m.Classes = m.Classes[:1] }, nil, allShards, ErrCorruptShard, "outside the 1 classes"},
		{"truncated shard", nil, func() {
			os.Truncate(filepath.Join(out, m.Shards[3].Name), m.Shards[3].Bytes-2000)
		}, 3, ErrCorruptShard, m.Shards[3].Name},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mm, err := ReadManifest(out)
			if err != nil {
				t.Fatal(err)
			}
			if tt.damage != nil {
				tt.damage(mm)
				if err := WriteManifest(out, mm); err != nil {
					t.Fatal(err)
				}
				defer os.WriteFile(filepath.Join(out, ManifestName), orig, 0o644)
			}
			if tt.file != nil {
				tt.file()
			}
			checks, err := Verify(out)
			if err != nil {
				t.Fatal(err)
			}
			for i, c := range checks {
				if i != tt.shard && tt.shard != allShards {
					if c.Err != nil {
						t.Fatalf("shard %d: %v", i, c.Err)
					}
					continue
				}
				if !errors.Is(c.Err, tt.want) || !strings.Contains(c.Err.Error(), tt.msg) {
					t.Fatalf("shard %d: %v, want %v mentioning %q", i, c.Err, tt.want, tt.msg)
				}
			}
		})
	}
	// An inconsistent manifest is refused as a whole.
	os.WriteFile(filepath.Join(out, ManifestName), []byte(`{"version":1,"images":5,"shards":[]}`), 0o644)
	if _, err := Verify(out); !errors.Is(err, ErrBadManifest) {
		t.Fatalf("bad manifest: %v", err)
	}
}

// TestVerifyDuplicateSamples: two shards holding the same samples are
// caught by the dataset-wide uniqueness checks.
func TestVerifyDuplicateSamples(t *testing.T) {
	dir := t.TempDir()
	a := writeTestShard(t, dir, "shard-000000.tar", 3)
	b := writeTestShard(t, dir, "shard-000001.tar", 3)
	m := &Manifest{Version: ManifestVersion, Shards: []ShardInfo{a, b}, Images: 6, Pairs: int64(a.Pairs + b.Pairs), Classes: make([]string, 5)}
	if err := WriteManifest(dir, m); err != nil {
		t.Fatal(err)
	}
	checks, err := Verify(dir)
	if err != nil {
		t.Fatal(err)
	}
	if checks[0].Err != nil || !errors.Is(checks[1].Err, ErrCorruptShard) || !strings.Contains(checks[1].Err.Error(), "twice") {
		t.Fatalf("checks %+v", checks)
	}
}

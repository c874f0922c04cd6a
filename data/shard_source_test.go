package data

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/e2evlp/vlp/sharding"
)

// writeShards writes the world's images into two shards (the JPEG of image
// corrupt, when ≥ 0, truncated) and returns their manifest.
func writeShards(t *testing.T, dir string, w *SynthWorld, corrupt int) *sharding.Manifest {
	t.Helper()
	jpegOf := map[*sharding.SampleMeta][]byte{}
	for _, e := range w.Examples {
		jpegOf[e.Meta] = e.JPEG
	}
	m := &sharding.Manifest{}
	half := len(w.Metas) / 2
	for s, metas := range [][]*sharding.SampleMeta{w.Metas[:half], w.Metas[half:]} {
		var buf bytes.Buffer
		name := "shard-00000" + itoa(s) + ".tar"
		sw := sharding.NewShardWriter(&buf, name)
		for _, meta := range metas {
			jpg := jpegOf[meta]
			if int(meta.ImageID)-1 == corrupt {
				jpg = jpg[:len(jpg)/2]
			}
			if err := sw.Add(meta, jpg); err != nil {
				t.Fatal(err)
			}
		}
		info, err := sw.Close()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		m.Shards = append(m.Shards, info)
	}
	return m
}

func TestShardSourceThroughPipeline(t *testing.T) {
	w := jpegWorld(t, 10)
	dir := t.TempDir()
	m := writeShards(t, dir, w, 7)
	cfg := testConfig()
	cfg.Workers = 3
	bs, st := runPipeline(t, cfg, w.Tokenizer, NewShardSource(dir, m))
	badPairs := len(w.Metas[7].Texts)
	rows := 0
	for _, b := range bs {
		checkBatchShapes(t, b)
		rows += b.Size
	}
	if rows != len(w.Examples)-badPairs || st.SkippedImages != 1 || st.SkippedPairs != badPairs {
		t.Fatalf("rows %d stats %+v; want %d rows, 1 image and %d pairs skipped", rows, st, len(w.Examples)-badPairs, badPairs)
	}
	if !strings.Contains(st.RecentErrors[0], "shard-000001.tar") || !strings.Contains(st.RecentErrors[0], w.Metas[7].Key) {
		t.Fatalf("skip reason %q does not name shard and key", st.RecentErrors[0])
	}
}

func TestShardSourceTruncatedShard(t *testing.T) {
	w := jpegWorld(t, 6)
	dir := t.TempDir()
	m := writeShards(t, dir, w, -1)
	truncateFile(t, filepath.Join(dir, m.Shards[1].Name), 2, 3)
	p, err := NewPipeline(t.Context(), testConfig(), w.Tokenizer, NewShardSource(dir, m))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var last error
	for {
		if _, last = p.Next(ctx); last != nil {
			break
		}
	}
	if !strings.Contains(last.Error(), m.Shards[1].Name) || !strings.Contains(last.Error(), "corrupt shard") {
		t.Fatalf("err = %v, want a corrupt-shard error naming %s", last, m.Shards[1].Name)
	}
}

// truncateFile keeps the first num/den of the file at path.
func truncateFile(t *testing.T, path string, num, den int) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, raw[:len(raw)*num/den], 0o644); err != nil {
		t.Fatal(err)
	}
}

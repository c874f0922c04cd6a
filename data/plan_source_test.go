package data

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/e2evlp/vlp/sharding"
)

// planRefs is every pair of the epoch plan (seed, epoch, unit size), unit after unit.
func planRefs(t *testing.T, m *sharding.Manifest, seed uint64, epoch, unitPairs int) []sharding.PairRef {
	t.Helper()
	plan, err := sharding.NewPlan(m, seed, epoch, unitPairs)
	if err != nil {
		t.Fatal(err)
	}
	var refs []sharding.PairRef
	for u := 0; u < plan.Units(); u++ {
		unit, err := plan.Unit(u)
		if err != nil {
			t.Fatal(err)
		}
		refs = append(refs, unit...)
	}
	return refs
}

func TestPlanSourceServesThePlan(t *testing.T) {
	w := jpegWorld(t, 14)
	dir := t.TempDir()
	m := writeShards(t, dir, w, -1)
	refs := planRefs(t, m, 7, 2, 10)
	byPair := map[uint64]string{}
	for _, e := range w.Examples {
		byPair[e.PairID()] = e.Meta.Texts[e.Text].Text
	}
	src := NewPlanSource(dir, m, refs)
	defer src.Close()
	seen := map[uint64]bool{}
	for i := 0; ; i++ {
		e, err := src.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		id := e.PairID()
		if seen[id] {
			t.Fatalf("pair %d served twice", id)
		}
		seen[id] = true
		if got := e.Meta.Texts[e.Text].Text; got != byPair[id] {
			t.Fatalf("pair %d: text %q, want %q", id, got, byPair[id])
		}
		if e.Shard != m.Shards[refs[i].Shard].Name {
			t.Fatalf("pair %d from %s, want %s", id, e.Shard, m.Shards[refs[i].Shard].Name)
		}
		if _, err := (GoDecoder{}).Decode(e.JPEG, nil); err != nil {
			t.Fatalf("pair %d: %v", id, err)
		}
	}
	if len(seen) != len(w.Examples) {
		t.Fatalf("%d pairs served, want %d", len(seen), len(w.Examples))
	}

	// Through the pipeline, in plan order: the rows are the plan's pairs.
	cfg := testConfig()
	cfg.Workers = 3
	bs, st := runPipeline(t, cfg, w.Tokenizer, NewPlanSource(dir, m, refs))
	k := 0
	for _, b := range bs {
		for _, id := range b.SampleIDs {
			want := shardPairID(t, w, m, refs[k])
			if id != want {
				t.Fatalf("row %d: pair %d, want %d", k, id, want)
			}
			k++
		}
	}
	if k != len(refs) || st.SkippedImages != 0 {
		t.Fatalf("%d rows (stats %+v), want %d", k, st, len(refs))
	}
}

// shardPairID resolves a PairRef with the shard layout writeShards used.
func shardPairID(t *testing.T, w *SynthWorld, m *sharding.Manifest, ref sharding.PairRef) uint64 {
	t.Helper()
	img := int(ref.Sample)
	for s := 0; s < int(ref.Shard); s++ {
		img += len(m.Shards[s].SamplePairs)
	}
	return w.Metas[img].Texts[ref.Text].PairID
}

func TestPlanSourceDamagedShard(t *testing.T) {
	w := jpegWorld(t, 6)
	dir := t.TempDir()
	m := writeShards(t, dir, w, -1)
	truncateFile(t, filepath.Join(dir, m.Shards[1].Name), 1, 2)
	src := NewPlanSource(dir, m, []sharding.PairRef{{Shard: 0, Sample: 0, Text: 0}, {Shard: 1, Sample: 0, Text: 0}})
	defer src.Close()
	if _, err := src.Next(context.Background()); err != nil {
		t.Fatalf("intact shard: %v", err)
	}
	_, err := src.Next(context.Background())
	if !errors.Is(err, ErrShardIndex) || !strings.Contains(err.Error(), m.Shards[1].Name) {
		t.Fatalf("err = %v, want ErrShardIndex naming %s", err, m.Shards[1].Name)
	}
}

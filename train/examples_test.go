package train

import (
	"context"
	"github.com/e2evlp/vlp/worker"
	"math"
	"path/filepath"
	"testing"

	"github.com/e2evlp/vlp/data"
	"github.com/e2evlp/vlp/sharding"
	"github.com/e2evlp/vlp/synth"
)

// testShards exports a small synthetic world and shards it.
func testShards(t *testing.T, images int) (string, *sharding.Manifest) {
	t.Helper()
	root := t.TempDir()
	coco, vg, out := filepath.Join(root, "coco"), filepath.Join(root, "vg"), filepath.Join(root, "shards")
	w := synth.DefaultConfig(3, images)
	w.Width, w.Height = 48, 48
	if _, err := synth.Export(synth.ExportConfig{World: w, Overlap: 0.3}, coco, vg); err != nil {
		t.Fatal(err)
	}
	m, _, err := sharding.Build(context.Background(), sharding.BuildConfig{COCODir: coco, VGDir: vg, Out: out, ShardSize: 7, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	return out, m
}

// ShardExamples serves every pair of an epoch exactly once over its units
// (the plan's order), and the batches it gives collate with MLM masks,
// ITM labels and detection targets from the shards' records.
func TestShardExamplesEpoch(t *testing.T) {
	dir, m := testShards(t, 30)
	const perUnit = 5
	src, err := NewShardExamples(dir, m, 11, perUnit)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	counts := map[string]int{}
	units := int((m.Pairs + perUnit - 1) / perUnit)
	seen := map[uint64]int{}
	wc := data.WordCounts{}
	var all []data.Example
	for u := range units {
		n := perUnit
		if u == units-1 {
			n = int(m.Pairs) - u*perUnit
		}
		pairs := make([]worker.Pair, n)
		for i := range pairs {
			pairs[i] = worker.Pair{Epoch: 1, Unit: uint32(u), Offset: uint32(i)}
		}
		ex, err := src.Examples(pairs)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ex {
			seen[e.PairID()]++
			counts[e.Meta.Texts[e.Text].Kind]++
			wc.Add(e.Meta.Texts[e.Text].Text)
		}
		all = append(all, ex...)
	}
	if int64(len(seen)) != m.Pairs {
		t.Fatalf("%d distinct pairs served, the manifest has %d", len(seen), m.Pairs)
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("pair %d served %d times", id, n)
		}
	}
	if _, err := src.Examples([]worker.Pair{{Epoch: 1, Unit: uint32(units), Offset: 0}}); err == nil {
		t.Fatal("a unit past the plan's last was served")
	}
	v, err := data.BuildVocabFromCounts(wc, 500)
	if err != nil {
		t.Fatal(err)
	}
	cfg := data.DefaultConfig()
	cfg.Image = data.SquareImageConfig(48)
	cfg.BatchSize, cfg.Seed = 16, 11
	b, err := data.BuildBatch(cfg, data.NewTokenizer(v), all[:16])
	if err != nil {
		t.Fatal(err)
	}
	// The pixels keep their colours: the channels of a row differ (the
	// shapes are saturated colours on a grey background).
	hw := b.Height * b.Width
	var diff float64
	for k := 0; k < hw; k++ {
		r, g, bl := b.Images[k], b.Images[hw+k], b.Images[2*hw+k]
		diff += math.Abs(float64(r-g)) + math.Abs(float64(g-bl))
	}
	t.Logf("mean channel difference %.3f; first row: %q", diff/float64(hw), all[0].Meta.Texts[all[0].Text].Text)
	masked, pos, objects := 0, 0, 0
	for _, l := range b.MLMLabels {
		if l != data.IgnoreIndex {
			masked++
		}
	}
	for _, l := range b.ITMLabels {
		pos += int(l)
	}
	for _, tg := range b.Targets {
		objects += len(tg.Classes)
	}
	if masked == 0 || pos == 0 || pos == 16 || objects == 0 {
		t.Fatalf("batch of 16 shard pairs: %d masked tokens, %d ITM positives, %d objects; kinds %v", masked, pos, objects, counts)
	}
}

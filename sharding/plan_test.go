package sharding

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// layout makes a manifest whose shards hold samples with the given pair
// counts.
func layout(shards ...[]int) *Manifest {
	m := &Manifest{Version: ManifestVersion}
	for i, sp := range shards {
		info := ShardInfo{Name: fmt.Sprintf("s%d.tar", i), Images: len(sp), SamplePairs: sp}
		for _, n := range sp {
			info.Pairs += n
		}
		m.Shards = append(m.Shards, info)
		m.Images += int64(info.Images)
		m.Pairs += int64(info.Pairs)
	}
	return m
}

// checkExactlyOnce asserts that the units of p cover every pair of m once.
func checkExactlyOnce(t *testing.T, m *Manifest, p *Plan) {
	t.Helper()
	seen := map[PairRef]int{}
	total := 0
	for u := 0; u < p.Units(); u++ {
		refs, err := p.Unit(u)
		if err != nil {
			t.Fatal(err)
		}
		if len(refs) == 0 || len(refs) > p.UnitSize() || (u < p.Units()-1 && len(refs) != p.UnitSize()) {
			t.Fatalf("unit %d has %d pairs (unit size %d)", u, len(refs), p.UnitSize())
		}
		for _, r := range refs {
			if int(r.Shard) >= len(m.Shards) || int(r.Sample) >= len(m.Shards[r.Shard].SamplePairs) ||
				int(r.Text) >= m.Shards[r.Shard].SamplePairs[r.Sample] {
				t.Fatalf("unit %d: %+v is not a pair of the layout", u, r)
			}
			seen[r]++
			if seen[r] > 1 {
				t.Fatalf("pair %+v appears twice", r)
			}
			total++
		}
	}
	if int64(total) != m.Pairs || int64(len(seen)) != m.Pairs {
		t.Fatalf("plan covers %d pairs (%d distinct), manifest has %d", total, len(seen), m.Pairs)
	}
}

func TestPlanExactlyOnce(t *testing.T) {
	tests := []struct {
		name     string
		m        *Manifest
		unitSize int
	}{
		{"one pair", layout([]int{1}), 1},
		{"one pair big unit", layout([]int{1}), 64},
		{"two shards", layout([]int{5, 5, 5}, []int{1, 2, 3}), 4},
		{"empty samples and shard", layout([]int{0, 3, 0}, []int{}, []int{0, 0, 7}), 3},
		{"unit larger than epoch", layout([]int{2, 2}), 100},
		{"power of two", layout([]int{8, 8, 8, 8, 8, 8, 8, 8}), 8},
		{"power of two plus one", layout([]int{8, 8, 8, 8, 8, 8, 8, 8, 1}), 7},
		{"coco-like", layout([]int{5, 5, 5, 5, 5, 5, 5, 5, 5, 5}, []int{5, 50, 5, 55}), 16},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for epoch := 0; epoch < 3; epoch++ {
				p, err := NewPlan(tt.m, 42, epoch, tt.unitSize)
				if err != nil {
					t.Fatal(err)
				}
				checkExactlyOnce(t, tt.m, p)
			}
		})
	}
}

// TestPlanProperty: for random layouts, seeds, epochs and unit sizes the
// plan covers every pair exactly once.
func TestPlanProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 200; trial++ {
		var shards [][]int
		for s := rng.IntN(6); s >= 0; s-- {
			var sp []int
			for j := rng.IntN(40); j > 0; j-- {
				sp = append(sp, rng.IntN(8)) // zero-text samples included
			}
			shards = append(shards, sp)
		}
		m := layout(shards...)
		if m.Pairs == 0 {
			if _, err := NewPlan(m, 1, 0, 1); !errors.Is(err, ErrInvalidPlan) {
				t.Fatalf("empty layout: %v", err)
			}
			continue
		}
		p, err := NewPlan(m, rng.Uint64(), rng.IntN(100), 1+rng.IntN(50))
		if err != nil {
			t.Fatal(err)
		}
		checkExactlyOnce(t, m, p)
	}
}

func TestPlanDeterministicAndEpochsDiffer(t *testing.T) {
	m := layout([]int{5, 5, 5, 5}, []int{3, 4, 5, 6, 7}, []int{10, 10})
	all := func(seed uint64, epoch int) [][]PairRef {
		p, err := NewPlan(m, seed, epoch, 6)
		if err != nil {
			t.Fatal(err)
		}
		var out [][]PairRef
		for u := 0; u < p.Units(); u++ {
			refs, _ := p.Unit(u)
			out = append(out, refs)
		}
		return out
	}
	a, b := all(7, 3), all(7, 3)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two plans of the same (seed, epoch) differ")
	}
	if reflect.DeepEqual(a, all(7, 4)) {
		t.Fatal("epochs 3 and 4 have the same plan")
	}
	if reflect.DeepEqual(a, all(8, 3)) {
		t.Fatal("seeds 7 and 8 have the same plan")
	}
	// The order is shuffled: not manifest order.
	p, _ := NewPlan(m, 7, 3, 1000)
	refs, _ := p.Unit(0)
	inOrder := true
	for i, r := range refs {
		if p.Locate(uint64(i)) != r {
			inOrder = false
		}
	}
	if inOrder {
		t.Fatal("the plan is the manifest order")
	}
}

func TestPlanInvalid(t *testing.T) {
	m := layout([]int{1, 2})
	for _, tc := range []struct {
		unit, epoch int
	}{{0, 0}, {-1, 0}, {1, -1}} {
		if _, err := NewPlan(m, 1, tc.epoch, tc.unit); !errors.Is(err, ErrInvalidPlan) {
			t.Fatalf("unit %d epoch %d: %v", tc.unit, tc.epoch, err)
		}
	}
	p, _ := NewPlan(m, 1, 0, 2)
	if _, err := p.Unit(p.Units()); !errors.Is(err, ErrInvalidPlan) {
		t.Fatalf("unit out of range: %v", err)
	}
}

func BenchmarkPlanUnit(b *testing.B) {
	// About the real dataset: 226K images, 6M pairs.
	var shards [][]int
	for s := 0; s < 226; s++ {
		sp := make([]int, 1000)
		for j := range sp {
			sp[j] = 27
		}
		shards = append(shards, sp)
	}
	p, err := NewPlan(layout(shards...), 1, 0, 256)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := p.Unit(i % p.Units()); err != nil {
			b.Fatal(err)
		}
	}
}

// TestPlanOverShards follows a plan into real shards: every pair id of the
// import is reached exactly once through ReadSampleAt.
func TestPlanOverShards(t *testing.T) {
	coco, vg, _ := world(t)
	out := t.TempDir()
	m, _, err := build(t, coco, vg, out, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[uint64]bool{}
	for _, s := range readSamples(t, out) {
		for _, tx := range s.Meta.Texts {
			want[tx.PairID] = true
		}
	}
	files := make([]*os.File, len(m.Shards))
	for i, info := range m.Shards {
		if files[i], err = os.Open(filepath.Join(out, info.Name)); err != nil {
			t.Fatal(err)
		}
		defer files[i].Close()
	}
	p, err := NewPlan(m, 5, 1, 13)
	if err != nil {
		t.Fatal(err)
	}
	got := map[uint64]int{}
	for u := 0; u < p.Units(); u++ {
		refs, err := p.Unit(u)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range refs {
			info := m.Shards[r.Shard]
			s, err := ReadSampleAt(files[r.Shard], info.Name, int(r.Sample), info.SampleOffsets[r.Sample])
			if err != nil {
				t.Fatal(err)
			}
			got[s.Meta.Texts[r.Text].PairID]++
		}
	}
	if len(got) != len(want) || int64(len(want)) != m.Pairs {
		t.Fatalf("plan reached %d pair ids, the shards hold %d (manifest %d)", len(got), len(want), m.Pairs)
	}
	for id, n := range got {
		if n != 1 || !want[id] {
			t.Fatalf("pair id %d reached %d times (in shards: %v)", id, n, want[id])
		}
	}
}

package data

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/e2evlp/vlp/sharding"
)

// Example serves a pair out of order exactly as Next serves it in order,
// and rejects positions outside the shards.
func TestPlanSourceExample(t *testing.T) {
	w := jpegWorld(t, 9)
	dir := t.TempDir()
	m := writeShards(t, dir, w, -1)
	refs := planRefs(t, m, 3, 0, 4)
	inOrder := NewPlanSource(dir, m, refs)
	defer inOrder.Close()
	random := NewPlanSource(dir, m, nil)
	defer random.Close()
	want := make([]Example, len(refs))
	for i := range refs {
		var err error
		if want[i], err = inOrder.Next(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	for i := len(refs) - 1; i >= 0; i-- { // backwards
		got, err := random.Example(refs[i])
		if err != nil {
			t.Fatal(err)
		}
		if got.PairID() != want[i].PairID() || got.Shard != want[i].Shard || !bytes.Equal(got.JPEG, want[i].JPEG) {
			t.Fatalf("ref %+v: pair %d of %s, Next gave pair %d of %s", refs[i], got.PairID(), got.Shard, want[i].PairID(), want[i].Shard)
		}
	}
	tests := []struct {
		name string
		ref  sharding.PairRef
		want error
	}{
		{"shard", sharding.PairRef{Shard: uint32(len(m.Shards))}, ErrBadExample},
		{"sample", sharding.PairRef{Sample: 1 << 20}, ErrShardIndex},
		{"text", sharding.PairRef{Text: 1 << 20}, ErrBadExample},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := random.Example(tc.ref); !errors.Is(err, tc.want) {
				t.Fatalf("Example(%+v) = %v, want %v", tc.ref, err, tc.want)
			}
		})
	}
}

package sharding

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// ShardCheck is the verification result of one shard.
type ShardCheck struct {
	Name    string
	Samples int
	Pairs   int
	Err     error // nil when the shard is sound
}

// Verify reads every shard of the manifest in dir and checks structure,
// size and sha256, that each sample's texts match the manifest's
// sample_pairs, that class and attribute indices are inside the
// vocabularies, that boxes are normalised, and that pair ids and keys are
// unique across the dataset. It returns one result per shard; err is
// non-nil when the manifest itself is unusable.
func Verify(dir string) ([]ShardCheck, error) {
	m, err := ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	pairs := make(map[uint64]int32, m.Pairs) // pair id → shard index: 6M pairs in ~150 MB
	keys := make(map[string]bool, m.Images)
	out := make([]ShardCheck, len(m.Shards))
	for i, info := range m.Shards {
		out[i] = ShardCheck{Name: info.Name}
		out[i].Err = verifyShard(dir, m, i, &out[i], pairs, keys)
	}
	return out, nil
}

func verifyShard(dir string, m *Manifest, si int, res *ShardCheck, pairs map[uint64]int32, keys map[string]bool) error {
	info := m.Shards[si]
	r, err := OpenShard(dir, info)
	if err != nil {
		return err
	}
	defer r.Close()
	f, err := os.Open(filepath.Join(dir, info.Name))
	if err != nil {
		return err
	}
	defer f.Close()
	hdr := make([]byte, 100) // a tar header starts with the member name
	for {
		s, err := r.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		bad := func(format string, args ...any) error {
			return fmt.Errorf("%w: %s: sample %d (%s): %s", ErrCorruptShard, info.Name, s.Index, s.Meta.Key, fmt.Sprintf(format, args...))
		}
		if s.Index >= len(info.SamplePairs) || info.SamplePairs[s.Index] != len(s.Meta.Texts) {
			return bad("%d texts, manifest disagrees", len(s.Meta.Texts))
		}
		if info.SampleOffsets != nil {
			if _, err := f.ReadAt(hdr, info.SampleOffsets[s.Index]); err != nil {
				return bad("reading at sample_offsets: %v", err)
			}
			name := string(bytes.TrimRight(hdr, "\x00"))
			if !strings.HasPrefix(name, s.Meta.Key+".") {
				return bad("sample_offsets points at member %q", name)
			}
		}
		if keys[s.Meta.Key] {
			return bad("key appears twice in the dataset")
		}
		keys[s.Meta.Key] = true
		for _, t := range s.Meta.Texts {
			if prev, dup := pairs[t.PairID]; dup {
				return bad("pair id %d already used in %s", t.PairID, m.Shards[prev].Name)
			}
			pairs[t.PairID] = int32(si)
			if t.Text == "" {
				return bad("empty text (pair %d)", t.PairID)
			}
			if t.Box != nil && !boxOK(*t.Box) {
				return bad("region box %v not normalised", *t.Box)
			}
		}
		for _, o := range s.Meta.Objects {
			if o.Class < 0 || o.Class >= len(m.Classes) {
				return bad("class %d outside the %d classes", o.Class, len(m.Classes))
			}
			for _, a := range o.Attributes {
				if a < 0 || a >= len(m.Attributes) {
					return bad("attribute %d outside the %d attributes", a, len(m.Attributes))
				}
			}
			if !boxOK(o.Box) {
				return bad("object box %v not normalised", o.Box)
			}
		}
		res.Samples++
		res.Pairs += len(s.Meta.Texts)
	}
}

// boxOK: a normalised (cx, cy, w, h) box lying inside [0,1]^2.
func boxOK(b [4]float32) bool {
	const eps = 1e-4
	return b[2] > 0 && b[3] > 0 && b[0]-b[2]/2 >= -eps && b[1]-b[3]/2 >= -eps && b[0]+b[2]/2 <= 1+eps && b[1]+b[3]/2 <= 1+eps
}

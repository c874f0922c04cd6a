package data

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/e2evlp/vlp/sharding"
)

// PlanSource serves pairs addressed by the epoch plan (sharding.PairRef:
// shard, sample, text), in the order given, reading each sample's members
// straight from its offset in the shard file. The first access to a shard
// indexes it (tar headers only) and keeps it open until Close.
//
// The plan shuffles pairs over the whole epoch, so consecutive pairs rarely
// share an image; a small cache of recent samples still makes pairs of one
// image share their record, and so one decode, when they meet in a batch.
//
// Random access does not read a shard whole, so it cannot check the
// shard's sha256: run `vlp shard verify` on the data once (the importer's
// checksums travel in the manifest). Structural damage (a member missing, a
// JSON that does not parse or names another key) is an error naming the
// shard and the sample.
type PlanSource struct {
	dir   string
	m     *sharding.Manifest
	refs  []sharding.PairRef
	pos   int
	files map[uint32]*shardFile
	cache map[[2]uint32]*cachedSample
	order [][2]uint32 // cache keys, oldest first
}

var _ Source = (*PlanSource)(nil)

// planCacheSamples bounds the recent samples PlanSource keeps (memory: one
// JPEG and its JSON each, ~0.2 MB for COCO).
const planCacheSamples = 256

type shardFile struct {
	f     *os.File
	index []sampleSpan
}

type cachedSample struct {
	meta *sharding.SampleMeta
	jpeg []byte
}

// NewPlanSource serves refs (for example the concatenated units a worker
// leased, from sharding.Plan.Unit) out of the shards of m in dir.
func NewPlanSource(dir string, m *sharding.Manifest, refs []sharding.PairRef) *PlanSource {
	return &PlanSource{dir: dir, m: m, refs: refs, files: map[uint32]*shardFile{}, cache: map[[2]uint32]*cachedSample{}}
}

// Next implements Source.
func (s *PlanSource) Next(ctx context.Context) (Example, error) {
	if err := ctx.Err(); err != nil {
		return Example{}, err
	}
	if s.pos >= len(s.refs) {
		return Example{}, io.EOF
	}
	ex, err := s.Example(s.refs[s.pos])
	if err != nil {
		return Example{}, err
	}
	s.pos++
	return ex, nil
}

// sample returns a sample's record, from the cache or the shard file.
func (s *PlanSource) sample(shard, sample uint32) (*cachedSample, error) {
	key := [2]uint32{shard, sample}
	if c, ok := s.cache[key]; ok {
		return c, nil
	}
	if int(shard) >= len(s.m.Shards) {
		return nil, fmt.Errorf("%w: shard %d of %d", ErrBadExample, shard, len(s.m.Shards))
	}
	name := s.m.Shards[shard].Name
	sf, err := s.open(shard)
	if err != nil {
		return nil, err
	}
	if int(sample) >= len(sf.index) {
		return nil, fmt.Errorf("%w: shard %s: sample %d of %d", ErrShardIndex, name, sample, len(sf.index))
	}
	sp := sf.index[sample]
	raw := make([]byte, sp.json.n)
	if _, err := sf.f.ReadAt(raw, sp.json.off); err != nil {
		return nil, fmt.Errorf("data: shard %s sample %s: %w", name, sp.key, err)
	}
	meta := &sharding.SampleMeta{}
	if err := json.Unmarshal(raw, meta); err != nil {
		return nil, fmt.Errorf("%w: shard %s sample %s: bad JSON: %v", ErrShardIndex, name, sp.key, err)
	}
	if meta.Key != sp.key {
		return nil, fmt.Errorf("%w: shard %s sample %s: JSON names key %q", ErrShardIndex, name, sp.key, meta.Key)
	}
	jpg := make([]byte, sp.jpeg.n)
	if _, err := sf.f.ReadAt(jpg, sp.jpeg.off); err != nil {
		return nil, fmt.Errorf("data: shard %s sample %s: %w", name, sp.key, err)
	}
	c := &cachedSample{meta: meta, jpeg: jpg}
	if len(s.order) >= planCacheSamples {
		delete(s.cache, s.order[0])
		s.order = s.order[1:]
	}
	s.cache[key] = c
	s.order = append(s.order, key)
	return c, nil
}

func (s *PlanSource) open(shard uint32) (*shardFile, error) {
	if sf, ok := s.files[shard]; ok {
		return sf, nil
	}
	name := s.m.Shards[shard].Name
	f, err := os.Open(filepath.Join(s.dir, name))
	if err != nil {
		return nil, fmt.Errorf("data: open shard: %w", err)
	}
	idx, err := indexShard(f, name)
	if err != nil {
		f.Close()
		return nil, err
	}
	if want := len(s.m.Shards[shard].SamplePairs); want != 0 && want != len(idx) {
		f.Close()
		return nil, fmt.Errorf("%w: %s: %d samples, the manifest says %d", ErrShardIndex, name, len(idx), want)
	}
	sf := &shardFile{f: f, index: idx}
	s.files[shard] = sf
	return sf, nil
}

// Close closes the shard files.
func (s *PlanSource) Close() error {
	var first error
	for k, sf := range s.files {
		if err := sf.f.Close(); err != nil && first == nil {
			first = err
		}
		delete(s.files, k)
	}
	return first
}

package data

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/e2evlp/vlp/sharding"
)

// SampleReader reads the samples of one shard in order; *sharding.Reader is
// one. Next returns io.EOF after the last sample.
type SampleReader interface {
	Next() (sharding.Sample, error)
	Close() error
}

var _ SampleReader = (*sharding.Reader)(nil)

// ShardSource yields every pair of a list of shards, shard by shard, sample
// by sample, text by text. A shard that cannot be opened or read (bad
// structure, checksum mismatch) ends the stream with an error naming it; an
// image that does not decode is the pipeline's business (skipped, counted).
type ShardSource struct {
	open   func(i int) (SampleReader, string, error)
	n      int
	shard  int
	cur    SampleReader
	name   string
	queued []Example
}

var _ Source = (*ShardSource)(nil)

// NewShardSource reads the shards of a manifest in dir, in manifest order,
// verifying each one's size and sha256 as it ends.
func NewShardSource(dir string, m *sharding.Manifest) *ShardSource {
	return &ShardSource{n: len(m.Shards), open: func(i int) (SampleReader, string, error) {
		r, err := sharding.OpenShard(dir, m.Shards[i])
		return r, m.Shards[i].Name, err
	}}
}

// NewReaderSource reads from already opened readers, named for errors.
func NewReaderSource(names []string, readers []SampleReader) *ShardSource {
	return &ShardSource{n: len(readers), open: func(i int) (SampleReader, string, error) {
		return readers[i], names[i], nil
	}}
}

// Next implements Source.
func (s *ShardSource) Next(ctx context.Context) (Example, error) {
	for len(s.queued) == 0 {
		if err := ctx.Err(); err != nil {
			return Example{}, err
		}
		if s.cur == nil {
			if s.shard >= s.n {
				return Example{}, io.EOF
			}
			r, name, err := s.open(s.shard)
			if err != nil {
				return Example{}, fmt.Errorf("data: open shard %s: %w", name, err)
			}
			s.cur, s.name = r, name
		}
		smp, err := s.cur.Next()
		if errors.Is(err, io.EOF) {
			cerr := s.cur.Close()
			s.cur = nil
			s.shard++
			if cerr != nil {
				return Example{}, fmt.Errorf("data: close shard %s: %w", s.name, cerr)
			}
			continue
		}
		if err != nil {
			return Example{}, fmt.Errorf("data: shard %s: %w", s.name, err)
		}
		meta := smp.Meta
		s.queued = PairsOf(s.name, &meta, smp.JPEG)
	}
	e := s.queued[0]
	s.queued = s.queued[1:]
	return e, nil
}

// Close closes the shard being read, if any.
func (s *ShardSource) Close() error {
	if s.cur == nil {
		return nil
	}
	err := s.cur.Close()
	s.cur = nil
	return err
}

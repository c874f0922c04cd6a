package data

import (
	"context"
	"errors"
	"fmt"
	"image"
	"io"

	"github.com/e2evlp/vlp/sharding"
)

// ErrBadExample: an Example cannot become a row (no metadata, a text index
// out of range, no image).
var ErrBadExample = errors.New("data: bad example")

// Example is one (image, text) pair on its way into a batch: the image's
// shard record and the index of the text this pair uses. Pairs of the same
// image share Meta and JPEG; a batch decodes each distinct image once.
type Example struct {
	Shard string               // shard the record came from (error messages)
	Meta  *sharding.SampleMeta // the image's record
	Text  int                  // index into Meta.Texts
	JPEG  []byte               // encoded image, unless Image is set
	Image image.Image          // an already decoded image (in-memory sources); wins over JPEG
}

// PairID returns the pair's dataset-wide id.
func (e Example) PairID() uint64 { return e.Meta.Texts[e.Text].PairID }

// where names the example in error messages: shard and sample key.
func (e Example) where() string {
	key := "?"
	if e.Meta != nil {
		key = e.Meta.Key
	}
	if e.Shard == "" {
		return "sample " + key
	}
	return fmt.Sprintf("shard %s sample %s", e.Shard, key)
}

func (e Example) check() error {
	switch {
	case e.Meta == nil:
		return fmt.Errorf("%w: %s: no metadata", ErrBadExample, e.where())
	case e.Text < 0 || e.Text >= len(e.Meta.Texts):
		return fmt.Errorf("%w: %s: text %d of %d", ErrBadExample, e.where(), e.Text, len(e.Meta.Texts))
	case e.Image == nil && len(e.JPEG) == 0:
		return fmt.Errorf("%w: %s: no image", ErrBadExample, e.where())
	}
	return nil
}

// Source yields the pairs of an epoch in order. Next returns io.EOF after
// the last one. The pipeline calls Next from one goroutine only.
type Source interface {
	Next(ctx context.Context) (Example, error)
}

// SliceSource serves a fixed list of examples (tests, in-memory data).
type SliceSource struct {
	Examples []Example
	pos      int
}

var _ Source = (*SliceSource)(nil)

// Next implements Source.
func (s *SliceSource) Next(ctx context.Context) (Example, error) {
	if err := ctx.Err(); err != nil {
		return Example{}, err
	}
	if s.pos >= len(s.Examples) {
		return Example{}, io.EOF
	}
	s.pos++
	return s.Examples[s.pos-1], nil
}

// PairsOf returns one Example per text of the record, in text order.
func PairsOf(shard string, meta *sharding.SampleMeta, jpeg []byte) []Example {
	out := make([]Example, len(meta.Texts))
	for i := range meta.Texts {
		out[i] = Example{Shard: shard, Meta: meta, Text: i, JPEG: jpeg}
	}
	return out
}

package data

import (
	"fmt"
	"sort"

	"github.com/e2evlp/vlp/sharding"
	"github.com/e2evlp/vlp/synth"
)

// SynthVocabSize is the vocabulary size SynthWorld learns: the shapes
// world's captions use a few dozen words, so every word becomes one token
// well before this size.
const SynthVocabSize = 256

// SynthWorld is a shapes world held in memory as examples, ready to batch
// without JPEG or shards: the fastest way to get real Batches for model
// tests. Pairs are the captions and, if asked, the region descriptions.
// Class and attribute indices are synth.ClassNames and synth.AttributeNames.
type SynthWorld struct {
	Examples  []Example              // every pair, image by image, text by text
	Metas     []*sharding.SampleMeta // one per image
	Tokenizer *Tokenizer             // vocabulary learnt from the world's texts
}

// SynthPairsPerImage bounds the texts of one synthetic image, so that pair
// ids image*SynthPairsPerImage + text never collide.
const SynthPairsPerImage = 64

// NewSynthWorld renders every scene of cfg (synth.Scene) and learns a
// vocabulary of at most SynthVocabSize tokens from its texts.
func NewSynthWorld(cfg synth.Config, regions bool) (*SynthWorld, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	w := &SynthWorld{}
	var texts []string
	for i := 0; i < cfg.Images; i++ {
		p := synth.Scene(cfg, i)
		meta := synthMeta(p, regions)
		if len(meta.Texts) > SynthPairsPerImage {
			return nil, fmt.Errorf("%w: image %d has %d texts > %d", ErrBadExample, i, len(meta.Texts), SynthPairsPerImage)
		}
		w.Metas = append(w.Metas, meta)
		for k := range meta.Texts {
			w.Examples = append(w.Examples, Example{Shard: "synth", Meta: meta, Text: k, Image: p.Image})
			texts = append(texts, meta.Texts[k].Text)
		}
	}
	v, err := BuildVocab(texts, SynthVocabSize)
	if err != nil {
		return nil, err
	}
	w.Tokenizer = NewTokenizer(v)
	return w, nil
}

// synthMeta describes a picture as the importer would: normalised boxes,
// class and attribute indices, one text per caption (and region).
func synthMeta(p synth.Picture, regions bool) *sharding.SampleMeta {
	W, H := p.Image.Bounds().Dx(), p.Image.Bounds().Dy()
	norm := func(x0, y0, x1, y1 int) [4]float32 {
		return [4]float32{
			float32(x0+x1) / 2 / float32(W), float32(y0+y1) / 2 / float32(H),
			float32(x1-x0) / float32(W), float32(y1-y0) / float32(H),
		}
	}
	m := &sharding.SampleMeta{
		Key:     fmt.Sprintf("synth%09d", p.Index),
		ImageID: uint64(p.Index) + 1,
		Source:  "coco",
		Width:   W,
		Height:  H,
	}
	pair := func() uint64 { return uint64(p.Index)*SynthPairsPerImage + uint64(len(m.Texts)) }
	for _, c := range p.Captions {
		m.Texts = append(m.Texts, sharding.Text{PairID: pair(), Kind: "caption", Text: c})
	}
	if regions {
		for _, r := range p.Regions {
			box := norm(r.Box.Min.X, r.Box.Min.Y, r.Box.Max.X, r.Box.Max.Y)
			m.Texts = append(m.Texts, sharding.Text{PairID: pair(), Kind: "region", Text: r.Text, Box: &box})
		}
	}
	for _, o := range p.Objects {
		var attrs []int
		for _, a := range o.Attributes() {
			attrs = append(attrs, synth.AttributeIndex(a))
		}
		m.Objects = append(m.Objects, sharding.Object{
			Box:        norm(o.Box.Min.X, o.Box.Min.Y, o.Box.Max.X, o.Box.Max.Y),
			Class:      synth.ClassIndex(o.Class),
			Attributes: attrs,
		})
	}
	return m
}

// Order returns the pair indices of one epoch: all of them, permuted by
// (seed, epoch) so that a batch mixes many images (and in-batch ITM
// negatives have images to come from).
func (w *SynthWorld) Order(seed, epoch uint64) []int {
	idx := make([]int, len(w.Examples))
	keys := make([]uint64, len(w.Examples))
	for i := range idx {
		idx[i] = i
		keys[i] = mix64(mix64(seed^0x5851f42d4c957f2d) ^ mix64(epoch) ^ w.Examples[i].PairID())
	}
	sort.Slice(idx, func(a, b int) bool { return keys[idx[a]] < keys[idx[b]] })
	return idx
}

// Source returns the epoch's pairs in Order, for NewPipeline.
func (w *SynthWorld) Source(seed, epoch uint64) *SliceSource {
	var ex []Example
	for _, i := range w.Order(seed, epoch) {
		ex = append(ex, w.Examples[i])
	}
	return &SliceSource{Examples: ex}
}

// Batches builds one epoch of batches (cfg.Seed, cfg.Epoch) on the calling
// goroutine, the last one possibly smaller.
func (w *SynthWorld) Batches(cfg Config) ([]*Batch, error) {
	order := w.Order(cfg.Seed, cfg.Epoch)
	var out []*Batch
	for lo := 0; lo < len(order); lo += cfg.BatchSize {
		hi := min(lo+cfg.BatchSize, len(order))
		ex := make([]Example, 0, hi-lo)
		for _, i := range order[lo:hi] {
			ex = append(ex, w.Examples[i])
		}
		b, err := BuildBatch(cfg, w.Tokenizer, ex)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// SynthBatches renders a shapes world and returns one epoch of its batches
// with the tokenizer they were encoded with. Captions only; use
// NewSynthWorld for region descriptions or a concurrent pipeline.
func SynthBatches(scfg synth.Config, cfg Config) ([]*Batch, *Tokenizer, error) {
	w, err := NewSynthWorld(scfg, false)
	if err != nil {
		return nil, nil, err
	}
	bs, err := w.Batches(cfg)
	return bs, w.Tokenizer, err
}

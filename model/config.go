package model

import (
	"errors"
	"fmt"
	"sort"
)

// ErrConfig is wrapped by every Validate failure.
var ErrConfig = errors.New("model: invalid config")

// Config describes one E2E-VLP model and its losses. Every default carries
// its reason; Base() holds the paper's values.
type Config struct {
	// Backbone.

	// ResNetDepth is 18, 34 (basic blocks), 50, 101 or 152 (bottlenecks).
	// The paper uses 50, and 152 for its best results.
	ResNetDepth int
	// ResNetWidth is the channel count of the stem and first stage: 64 in
	// every torchvision ResNet (needed to load its weights); smaller only
	// for CPU tests.
	ResNetWidth int
	// FrozenBN replaces BatchNorm by a fixed affine map (DETR): per-GPU
	// batches of a few large images make batch statistics useless.
	FrozenBN bool
	// TrainableStages is how many of the last residual stages train (0..4);
	// the stem and stage 1 stay fixed as in DETR (3), which keeps the
	// generic low-level filters of a pretrained network. 4 trains the stem
	// as well (a backbone trained from scratch).
	TrainableStages int
	// DilateC5 swaps the stride of the last stage for dilation (DETR-DC5):
	// stride 16 instead of 32, four times the image tokens. Off at base
	// (memory); the tiny preset gets its stride 16 from NoStemPool instead.
	DilateC5 bool
	// NoStemPool drops the 3×3 max-pool after the 7×7 stem that every
	// torchvision ResNet has (stride 4 before the first stage), so the
	// first stage sees the image at stride 2. For small images: a 10-pixel
	// shape reaches the first stage of a pooled stem as 2–3 cells, too few
	// to tell a square from a diamond or a star. The tiny preset drops it
	// (with DilateC5 off: the same stride 16 and parameter shapes as the
	// pooled, dilated layout): the learning test's shapes are learnt by step
	// 1500 on every seed instead of somewhere between 1000 and 4000+, for
	// about 1.5× a CPU step (docs/BENCHMARKS.md, "The learning test"). The
	// zero value keeps the pool, as the pretrained ResNets have it.
	NoStemPool bool
	// ChannelsLast runs the backbone's convolutions in the channels-last
	// (NHWC) memory layout: the input images are laid out so before the
	// stem, and LibTorch carries the layout through every convolution,
	// BatchNorm, ReLU and pool after it. It changes where values sit in
	// memory, not what is computed: the same function within float
	// rounding, the same parameters (they stay contiguous). A GPU speed
	// option (tensor cores read NHWC); a trial on the 2-core CPU gained
	// nothing (docs/BENCHMARKS.md, "Demo"). Not part of the network's
	// Layout, so a checkpoint restores with or without it (omitempty keeps
	// it out of the layout's JSON, which layouts recorded before it
	// existed lack).
	ChannelsLast bool `json:",omitempty"`

	// Transformer.

	// DModel is the transformer width: 256 in the paper, as in DETR.
	DModel int
	// Heads must divide DModel: 8 (head size 32, as DETR). The paper's
	// slides say 12, which does not divide 256.
	Heads int
	// FFN is the feed-forward width: 4×DModel in the paper (1024).
	FFN int
	// EncoderLayers of the single-stream encoder: 12 in the paper.
	EncoderLayers int
	// DecoderLayers of each decoder: 6 in the paper (DETR's count).
	DecoderLayers int
	// Dropout in attention outputs, FFNs and embeddings: 0.1 (BERT, DETR).
	Dropout float64
	// SharedDecoder makes detection and captioning use one decoder stack;
	// false (default) gives each task its own weights: the two tasks
	// attend differently (set prediction vs causal language modelling),
	// and separate stacks cost only 6 small layers.
	SharedDecoder bool

	// Text.

	// VocabSize is BERT uncased's 30522 WordPiece tokens.
	VocabSize int
	// MaxTextLen bounds encoder text positions ([CLS] and [SEP] included):
	// 64 covers COCO captions and VG region descriptions.
	MaxTextLen int
	// MaxCaptionLen bounds caption decoder positions: 32 tokens.
	MaxCaptionLen int
	// TieMLM ties the MLM output matrix to the token embedding (BERT):
	// it saves VocabSize×DModel parameters (7.8M at base, a third of the
	// transformer) and helps rare words, which get gradient from both ends.
	TieMLM bool

	// Detection.

	// NumQueries learned object queries: 100 (DETR, the paper).
	NumQueries int
	// NumClasses object classes: VG's top 1600.
	NumClasses int
	// NumAttributes attribute classes: VG's top 400.
	NumAttributes int

	// Loss weights (DETR's, the paper's).
	Loss LossWeights
}

// LossWeights weighs every loss term; the total is Σ weight·loss.
type LossWeights struct {
	// Class is the detection CE weight (1) and also the matcher's class cost.
	Class float64
	// NoObject down-weights the no-object class in the CE: 0.1 (DETR),
	// because most queries match nothing.
	NoObject float64
	// L1 box regression weight (5) and matcher L1 cost.
	L1 float64
	// GIoU weight (2) and matcher GIoU cost.
	GIoU float64
	// Attribute CE on matched queries: 1.
	Attribute float64
	// MLM, ITM and Caption CE: 1 each, as the paper sums its tasks.
	MLM, ITM, Caption float64
	// Aux applies the detection losses to every decoder layer's output
	// (DETR's auxiliary decoding losses), which speeds up convergence.
	Aux bool
}

// DefaultLossWeights are DETR's matcher and criterion weights.
func DefaultLossWeights() LossWeights {
	return LossWeights{Class: 1, NoObject: 0.1, L1: 5, GIoU: 2, Attribute: 1, MLM: 1, ITM: 1, Caption: 1, Aux: true}
}

// Base is the paper's model: ResNet-50, encoder 12 / decoder 6, d 256.
func Base() Config {
	return Config{
		ResNetDepth: 50, ResNetWidth: 64, FrozenBN: true, TrainableStages: 3,
		DModel: 256, Heads: 8, FFN: 1024, EncoderLayers: 12, DecoderLayers: 6, Dropout: 0.1,
		VocabSize: 30522, MaxTextLen: 64, MaxCaptionLen: 32, TieMLM: true,
		NumQueries: 100, NumClasses: 1600, NumAttributes: 400,
		Loss: DefaultLossWeights(),
	}
}

// Large is Base on ResNet-152 (the paper's best results).
func Large() Config {
	c := Base()
	c.ResNetDepth = 152
	return c
}

// Tiny is for CPU tests on the synthetic shapes world: ResNet-18 at a
// quarter width without the stem's max-pool (stride 16: 64–96 px images
// still give 4×4 to 6×6 image tokens; see NoStemPool), 4 encoder and 2
// decoder layers of width 64, 10 queries (the world has at most 4 shapes),
// the world's 6 classes and 8 attributes, and a vocabulary of
// data.SynthVocabSize. Four encoder layers, not three: a masked colour
// word of a caption that names one of two shapes ("a small [MASK]
// circle") must gather its phrase, find that shape's image tokens and read
// their colour, and with three layers that binding stayed near chance for
// all 3000 steps of the learning test on some seeds and kernels (0.62
// against a chance of 0.58; its colour words 0.901), with four it is
// learnt by step 2000 (0.88 at the end, colour words 0.966;
// docs/BENCHMARKS.md, "The learning test"), for about 10% a step. BatchNorm trains (a from-scratch backbone needs
// its statistics), every stage trains, no dropout (the test is about
// fitting quickly, not regularising).
func Tiny() Config {
	return Config{
		ResNetDepth: 18, ResNetWidth: 16, FrozenBN: false, TrainableStages: 4, NoStemPool: true,
		DModel: 64, Heads: 4, FFN: 256, EncoderLayers: 4, DecoderLayers: 2, Dropout: 0,
		VocabSize: 256, MaxTextLen: 32, MaxCaptionLen: 32, TieMLM: true,
		NumQueries: 10, NumClasses: 6, NumAttributes: 8,
		Loss: tinyLoss(),
	}
}

// tinyLoss re-weights four losses for a short from-scratch run, so that
// every skill gets a share of the shared gradient early (the measurements
// are in docs/BENCHMARKS.md, "The learning test", and docs/model.md):
//   - Attribute 4: shape classification pulls a from-scratch backbone towards
//     colour-blind features; at weight 1 the attribute loss sat at the
//     size-only plateau (~1.59) for 1500+ steps and colours were never
//     learnt on 4096+ images, at 4 it leaves it within 500 steps.
//   - Class 6 (and matcher class cost): shapes are the last visual skill a
//     from-scratch backbone picks up. At 2, held-out shape words in captions
//     and the class of the best-placed query stayed at chance (1/6) for
//     1250+ steps while colours, sizes and boxes were long learnt, and the
//     step at which shapes appeared (1500–2500) decided AP50 and every
//     skill that needs a shape; at 6 they leave chance by step 500.
//   - ITM 4: one binary decision per row is the weakest signal in the sum.
//     At 1 held-out ITM stayed at chance, even on one-shape images whose
//     colour the model already read, until step 1500–2000; at 4 it is
//     learnt by step 1000–1500.
//   - MLM 3: a masked colour word is a few of the ~6 masked tokens of a
//     batch, so its signal is weak next to the five detection losses on
//     two decoder layers.
func tinyLoss() LossWeights {
	w := DefaultLossWeights()
	w.Class, w.Attribute, w.MLM, w.ITM = 6, 4, 3, 4
	return w
}

var presets = map[string]func() Config{"tiny": Tiny, "base": Base, "large": Large}

// Preset returns a named preset: tiny, base, large or a depth variant
// (variants.go).
func Preset(name string) (Config, error) {
	f, ok := presets[name]
	if !ok {
		f, ok = depthVariants()[name]
	}
	if !ok {
		return Config{}, fmt.Errorf("%w: unknown preset %q (have %v)", ErrConfig, name, PresetNames())
	}
	return f(), nil
}

// PresetNames lists the presets, sorted.
func PresetNames() []string {
	var n []string
	for k := range presets {
		n = append(n, k)
	}
	n = append(n, VariantNames()...)
	sort.Strings(n)
	return n
}

// Validate names the first field that is out of bounds.
func (c Config) Validate() error {
	bad := func(field string, v any, bound string) error {
		return fmt.Errorf("%w: %s = %v, want %s", ErrConfig, field, v, bound)
	}
	switch c.ResNetDepth {
	case 18, 34, 50, 101, 152:
	default:
		return bad("ResNetDepth", c.ResNetDepth, "18, 34, 50, 101 or 152")
	}
	switch {
	case c.ResNetWidth < 1:
		return bad("ResNetWidth", c.ResNetWidth, ">= 1")
	case c.TrainableStages < 0 || c.TrainableStages > 4:
		return bad("TrainableStages", c.TrainableStages, "0..4")
	case c.DModel < 1:
		return bad("DModel", c.DModel, ">= 1")
	case c.Heads < 1 || c.DModel%c.Heads != 0:
		return bad("Heads", c.Heads, fmt.Sprintf(">= 1 dividing DModel %d", c.DModel))
	case c.DModel%4 != 0:
		return bad("DModel", c.DModel, "a multiple of 4 (2-D sine positions)")
	case c.FFN < 1:
		return bad("FFN", c.FFN, ">= 1")
	case c.EncoderLayers < 1:
		return bad("EncoderLayers", c.EncoderLayers, ">= 1")
	case c.DecoderLayers < 1:
		return bad("DecoderLayers", c.DecoderLayers, ">= 1")
	case c.Dropout < 0 || c.Dropout >= 1:
		return bad("Dropout", c.Dropout, "in [0, 1)")
	case c.VocabSize < 4:
		return bad("VocabSize", c.VocabSize, ">= 4")
	case c.MaxTextLen < 2:
		return bad("MaxTextLen", c.MaxTextLen, ">= 2")
	case c.MaxCaptionLen < 2:
		return bad("MaxCaptionLen", c.MaxCaptionLen, ">= 2")
	case c.NumQueries < 1:
		return bad("NumQueries", c.NumQueries, ">= 1")
	case c.NumClasses < 1:
		return bad("NumClasses", c.NumClasses, ">= 1")
	case c.NumAttributes < 1:
		return bad("NumAttributes", c.NumAttributes, ">= 1")
	case c.Loss.NoObject < 0 || c.Loss.NoObject > 1:
		return bad("Loss.NoObject", c.Loss.NoObject, "in [0, 1]")
	}
	for name, w := range map[string]float64{"Class": c.Loss.Class, "L1": c.Loss.L1, "GIoU": c.Loss.GIoU,
		"Attribute": c.Loss.Attribute, "MLM": c.Loss.MLM, "ITM": c.Loss.ITM, "Caption": c.Loss.Caption} {
		if w < 0 {
			return bad("Loss."+name, w, ">= 0")
		}
	}
	return nil
}

// HeadDim is DModel / Heads.
func (c Config) HeadDim() int { return c.DModel / c.Heads }

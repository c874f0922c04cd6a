package model

import (
	"fmt"

	"github.com/e2evlp/vlp/data"
	"github.com/e2evlp/vlp/torch"
)

// NLVR2: is a statement true of a pair of images? Two image–text passes —
// the statement with the left image, the same statement with the right —
// their pooled outputs concatenated [left, right] and classified by a
// two-layer MLP into 2 classes (1: true), trained with cross-entropy
// (UNITER's "paired" setting, the paper's).
//
// The two passes run as one batch of 2B rows (the B left pairs, then the B
// right pairs): the same computation as two passes wherever BatchNorm uses
// running or frozen statistics (base and large presets, evaluation). Where
// BatchNorm trains (the tiny preset) its batch statistics then cover both
// images of every example, as they would in any batch of 2B images.

// NLVR2Prefix names the NLVR2 head's parameters.
const NLVR2Prefix = "nlvr2_head"

// NLVR2Head is the pair classifier.
type NLVR2Head struct {
	mlp    classifierMLP
	params []*Param
}

// NewNLVR2Head builds the head on a model of c's width, initialised from
// seed: dense 2d → 2d, GELU, LayerNorm, dense 2d → 2.
func NewNLVR2Head(c Config, seed uint64, dev torch.Device) (*NLVR2Head, error) {
	if c.DModel < 1 {
		return nil, fmt.Errorf("%w: NLVR2 head: DModel %d", ErrConfig, c.DModel)
	}
	ps := headParams(NLVR2Prefix, seed, dev)
	h := &NLVR2Head{mlp: newClassifierMLP(ps, 2*c.DModel, 2*c.DModel, 2)}
	h.params = ps.list
	if ps.err != nil {
		h.Close()
		return nil, ps.err
	}
	return h, nil
}

// Prefix is NLVR2Prefix.
func (h *NLVR2Head) Prefix() string { return NLVR2Prefix }

// Params lists the head's parameters: dense, ln, out.
func (h *NLVR2Head) Params() []*Param { return h.params }

// Close frees the head's parameters.
func (h *NLVR2Head) Close() { closeParams(h.params) }

// NLVR2Batch is a host batch of statements, each with its two images
// (same padded size) and, for training, its label.
type NLVR2Batch struct {
	Size, Height, Width int
	Left, Right         []float32 // [B,3,H,W] each
	LeftMask, RightMask []bool    // [B,H,W] each, true on padding
	SeqLen              int
	TokenIDs            []int64 // [B,L] the statement
	TokenMask           []bool  // [B,L]
	Labels              []int64 // [B] 1: true, 0: false; nil when there are none (hidden test)
}

// NLVR2Inputs is an NLVR2Batch on the device: 2B pair rows (the left pairs,
// then the right pairs) and the labels.
type NLVR2Inputs struct {
	B      int
	Pairs  *Inputs       // 2B rows
	Labels *torch.Tensor // [B] int64, nil without labels
}

// NLVR2ToTensors checks b's sizes and uploads it into s.
func NLVR2ToTensors(s *torch.Scope, b *NLVR2Batch, dev torch.Device) (*NLVR2Inputs, error) {
	B, H, W, L := b.Size, b.Height, b.Width, b.SeqLen
	img := B * 3 * H * W
	switch {
	case B < 1 || H < 1 || W < 1 || L < 1:
		return nil, fmt.Errorf("%w: NLVR2 sizes B=%d H=%d W=%d L=%d", ErrBatch, B, H, W, L)
	case len(b.Left) != img || len(b.Right) != img || len(b.LeftMask) != B*H*W || len(b.RightMask) != B*H*W:
		return nil, fmt.Errorf("%w: NLVR2 images %d+%d / masks %d+%d values for [%d,3,%d,%d] each",
			ErrBatch, len(b.Left), len(b.Right), len(b.LeftMask), len(b.RightMask), B, H, W)
	case b.Labels != nil && len(b.Labels) != B:
		return nil, fmt.Errorf("%w: %d NLVR2 labels for %d rows", ErrBatch, len(b.Labels), B)
	}
	for i, l := range b.Labels {
		if l != 0 && l != 1 {
			return nil, fmt.Errorf("%w: NLVR2 label %d of row %d, want 0 or 1", ErrBatch, l, i)
		}
	}
	pairs := &PairBatch{
		Size: 2 * B, Height: H, Width: W, SeqLen: L,
		Images:    append(append(make([]float32, 0, 2*img), b.Left...), b.Right...),
		PixelMask: append(append(make([]bool, 0, 2*B*H*W), b.LeftMask...), b.RightMask...),
		TokenIDs:  append(append(make([]int64, 0, 2*B*L), b.TokenIDs...), b.TokenIDs...),
		TokenMask: append(append(make([]bool, 0, 2*B*L), b.TokenMask...), b.TokenMask...),
	}
	in, err := PairsToTensors(s, pairs, dev) // 2B rows
	if err != nil {
		return nil, err
	}
	out := &NLVR2Inputs{B: B, Pairs: in}
	if b.Labels != nil {
		out.Labels = torch.FromInt64(s, b.Labels, []int64{int64(B)}, dev) // [B]
		if err := out.Labels.Err(); err != nil {
			return nil, fmt.Errorf("model: upload NLVR2 labels: %w", err)
		}
	}
	return out, nil
}

// Forward classifies each statement against its image pair and, when the
// inputs carry labels, gives the loss "nlvr2" (CE, mean over statements).
// train and gen as in VQAHead.Forward.
func (h *NLVR2Head) Forward(s *torch.Scope, m *Model, in *NLVR2Inputs, train bool, gen *torch.Generator) (*torch.Tensor, Losses, error) { // -> [B,2]
	f := &fwd{s: s, train: train, dropout: m.Config.Dropout, gen: gen}
	b := int64(in.B)
	pooled := m.pooledPairs(f, in.Pairs)                                                  // [2B,d]
	pair := torch.Cat([]*torch.Tensor{pooled.Narrow(0, 0, b), pooled.Narrow(0, b, b)}, 1) // [B,2d]
	logits := h.mlp.forward(pair)                                                         // [B,2]
	var ls Losses
	if in.Labels != nil {
		ls = taskLosses("nlvr2", torch.CrossEntropy(logits, in.Labels, nil, data.IgnoreIndex, torch.ReduceMean))
	}
	if err := s.Err(); err != nil {
		return nil, Losses{}, fmt.Errorf("model: NLVR2 forward: %w", err)
	}
	return logits, ls, nil
}

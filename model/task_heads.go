package model

import (
	"fmt"

	"github.com/e2evlp/vlp/torch"
)

// The fine-tuning tasks of the paper run on the pretrained model plus, for
// VQA and NLVR2, a task head of their own:
//
//	task        head (parameters)            forward              loss
//	VQA         VQAHead (vqa_head.*)         VQAHead.Forward      "vqa": BCE over soft scores × answers
//	NLVR2       NLVR2Head (nlvr2_head.*)     NLVR2Head.Forward    "nlvr2": CE over 2 classes
//	captioning  none (cap_decoder, cap_head) Model.CaptionForward "caption": the pretraining caption CE
//	retrieval   none (itm.*)                 Model.RetrievalForward "retrieval": ITM CE with hard negatives
//
// A head owns its parameters, named under its prefix so that they never
// collide with the model's, and a fine-tuning job trains
// TaskParams(model, head): the model's parameters then the head's.
// InitFromPretrained fills that list from a pretraining checkpoint and
// reports which parameters are new.
//
// VQA and NLVR2 read the pooled pair representation: the encoder's output
// at [CLS] for [CLS] text [SEP] + image tokens, through the ITM head's
// pooler (dense, tanh). That pooler is pretrained by ITM to summarise
// whether and how the text fits the image, which is what both tasks ask;
// BERT, LXMERT and UNITER put their task heads on their pretrained
// pooler the same way.

// TaskHead is what a fine-tuning job needs of a head beyond its forward:
// its parameters (to train, all-reduce, checkpoint and initialise) and
// their release. Params' order is stable for a given configuration.
type TaskHead interface {
	Prefix() string // every parameter's name starts with Prefix() + "."
	Params() []*Param
	Close()
}

var (
	_ TaskHead = (*VQAHead)(nil)
	_ TaskHead = (*NLVR2Head)(nil)
)

// TaskParams lists the model's parameters and buffers, then each head's.
func TaskParams(m *Model, heads ...TaskHead) []*Param {
	ps := append([]*Param(nil), m.Params()...)
	for _, h := range heads {
		ps = append(ps, h.Params()...)
	}
	return ps
}

// TrainableOf returns the tensors of ps the optimiser updates, in order.
func TrainableOf(ps []*Param) []*torch.Tensor {
	var ts []*torch.Tensor
	for _, p := range ps {
		if p.Trainable() {
			ts = append(ts, p.T)
		}
	}
	return ts
}

// headParams is the parameter store of one head: its own seeded generator
// (a head initialises the same whatever the model's seed) and its prefix.
func headParams(prefix string, seed uint64, dev torch.Device) *paramSet {
	return newParamSet(seed, dev).sub(prefix)
}

// closeParams frees owned tensors.
func closeParams(ps []*Param) {
	for _, p := range ps {
		if p.T != nil {
			p.T.Close()
			p.T = nil
		}
	}
}

// PairBatch is a host batch of image–text pairs, the input of the
// understanding tasks (VQA, retrieval). Its fields are data.Batch's of the
// same names.
type PairBatch struct {
	Size, Height, Width int
	Images              []float32 // [B,3,H,W] normalised RGB, zero in padding
	PixelMask           []bool    // [B,H,W] true on padding
	SeqLen              int
	TokenIDs            []int64 // [B,L] [CLS] text [SEP] and padding
	TokenMask           []bool  // [B,L] true on padding
}

// PairsToTensors checks b's sizes and uploads it: the Inputs fields a pair
// pass reads (B, H, W, L, Images, PixelMask, TokenIDs, TokenPad); the
// pretraining fields stay empty. Every tensor is owned by s.
func PairsToTensors(s *torch.Scope, b *PairBatch, dev torch.Device) (*Inputs, error) {
	B, H, W, L := b.Size, b.Height, b.Width, b.SeqLen
	switch {
	case B < 1 || H < 1 || W < 1 || L < 1:
		return nil, fmt.Errorf("%w: pair sizes B=%d H=%d W=%d L=%d", ErrBatch, B, H, W, L)
	case len(b.Images) != B*3*H*W || len(b.PixelMask) != B*H*W:
		return nil, fmt.Errorf("%w: images %d / mask %d values for [%d,3,%d,%d]", ErrBatch, len(b.Images), len(b.PixelMask), B, H, W)
	case len(b.TokenIDs) != B*L || len(b.TokenMask) != B*L:
		return nil, fmt.Errorf("%w: %d token ids, %d mask values for B·L = %d", ErrBatch, len(b.TokenIDs), len(b.TokenMask), B*L)
	}
	in := &Inputs{B: B, H: H, W: W, L: L, PixelMask: b.PixelMask}
	in.Images = torch.FromFloat32(s, b.Images, []int64{int64(B), 3, int64(H), int64(W)}, dev) // [B,3,H,W]
	in.TokenIDs = torch.FromInt64(s, b.TokenIDs, []int64{int64(B), int64(L)}, dev)            // [B,L]
	in.TokenPad = torch.FromBool(s, b.TokenMask, []int64{int64(B), int64(L)}, dev)            // [B,L]
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("model: upload pairs: %w", err)
	}
	return in, nil
}

// pooledPairs is the pooled representation of each pair: the encoder over
// [CLS] text [SEP] + image tokens, its [CLS] output through the ITM pooler.
func (m *Model) pooledPairs(f *fwd, in *Inputs) *torch.Tensor { // -> [B,d]
	img, _, imgPad := m.imageTokens(f, in)                                  // [B,hw,d], [B,hw]
	x := m.encode(f, m.Text.text(f, in.TokenIDs), in.TokenPad, img, imgPad) // [B,L+hw,d]
	return m.ITM.pool.forward(x.Select(1, 0)).Tanh()                        // [B,d]
}

// taskLosses is a Losses holding one named loss, which is also the total.
func taskLosses(name string, loss *torch.Tensor) Losses {
	return Losses{ByName: map[string]*torch.Tensor{name: loss}, Total: loss}
}

// classifierMLP is the two-layer head of VQA and NLVR2 (LXMERT's and
// UNITER's): dense to 2·d, GELU, LayerNorm, dense to the classes.
type classifierMLP struct {
	dense linearP
	ln    layerNormP
	out   linearP
}

func newClassifierMLP(ps *paramSet, in, hidden, classes int) classifierMLP {
	return classifierMLP{
		dense: newLinear(ps, "dense", in, hidden, true),
		ln:    newLayerNorm(ps, "ln", hidden),
		out:   newLinear(ps, "out", hidden, classes, true),
	}
}

// forward has no dropout of its own (neither LXMERT's nor UNITER's head
// has one); the encoder's dropout precedes it. GELU is the exact (erf) one.
func (c classifierMLP) forward(x *torch.Tensor) *torch.Tensor { // [N,in] -> [N,classes]
	h := c.ln.forward(c.dense.forward(x).Gelu()) // [N,hidden]
	return c.out.forward(h)                      // [N,classes]
}

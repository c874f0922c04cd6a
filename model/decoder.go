package model

import (
	"fmt"

	"github.com/e2evlp/vlp/torch"
)

// The decoders attend to the encoder's image-token outputs (the memory).
// Detection (DETR): learned object queries, full self-attention among
// queries, cross-attention to the memory, an output after every layer (the
// auxiliary losses), class / attribute / box heads. Captioning: caption
// tokens with causal self-attention, cross-attention to the same memory,
// teacher forcing, logits through the (tied) token embedding.
//
// Shared or separate: Config.SharedDecoder. Separate by default — a set
// of queries and a left-to-right sentence want different self-attention,
// and at base a second 6-layer stack costs 4.7M parameters, under 5% of the
// model; shared weights remain an option (the layers are the same shape).

type decoderLayer struct {
	ln1, ln2, ln3       layerNormP
	selfAttn, crossAttn attnP
	ffn                 ffnP
}

func newDecoderLayer(ps *paramSet, c Config) decoderLayer {
	return decoderLayer{
		ln1: newLayerNorm(ps, "ln1", c.DModel), selfAttn: newAttention(ps, "self_attn", c.DModel, c.Heads),
		ln2: newLayerNorm(ps, "ln2", c.DModel), crossAttn: newAttention(ps, "cross_attn", c.DModel, c.Heads),
		ln3: newLayerNorm(ps, "ln3", c.DModel), ffn: newFFN(ps, "ffn", c.DModel, c.FFN),
	}
}

// memory is what the decoders attend to: the image-token outputs as
// values, plus their 2-D sine positions in the keys (DETR: cross-attention
// finds places by position as well as by content).
type memory struct {
	val, key, pad *torch.Tensor // [B,S,d], [B,S,d], [B,S]
}

// forward is one pre-norm decoder layer. qpos (nil for captions) is added to
// the queries and keys of self-attention and to the queries of
// cross-attention at every layer, as DETR adds its object queries.
func (l decoderLayer) forward(f *fwd, x, qpos, selfPad *torch.Tensor, causal bool, mem memory) *torch.Tensor { // [B,N,d],[N,d],[B,N] -> [B,N,d]
	withPos := func(h *torch.Tensor) *torch.Tensor {
		if qpos == nil {
			return h
		}
		return torch.Add(h, qpos)
	}
	h := l.ln1.forward(x)                                                                 // [B,N,d]
	qk := withPos(h)                                                                      // [B,N,d]
	x = torch.Add(x, f.drop(l.selfAttn.forward(f, qk, qk, h, selfPad, causal)))           // [B,N,d]
	q := withPos(l.ln2.forward(x))                                                        // [B,N,d]
	x = torch.Add(x, f.drop(l.crossAttn.forward(f, q, mem.key, mem.val, mem.pad, false))) // [B,N,d]
	return torch.Add(x, f.drop(l.ffn.forward(f, l.ln3.forward(x))))                       // [B,N,d]
}

func newDecoderLayers(ps *paramSet, c Config, n int) []decoderLayer {
	var ls []decoderLayer
	for i := 0; i < n; i++ {
		ls = append(ls, newDecoderLayer(ps.sub(fmt.Sprintf("layers.%d", i)), c))
	}
	return ls
}

// DetectionDecoder holds the object queries and the detection stack.
type DetectionDecoder struct {
	queries *torch.Tensor // [Q,d]
	layers  []decoderLayer
	lnF     layerNormP
	class   linearP    // d -> C+1 (the last class is no-object)
	attr    linearP    // d -> A
	box     [3]linearP // d -> d -> d -> 4, ReLU between, sigmoid after
}

func newDetectionDecoder(ps *paramSet, c Config) *DetectionDecoder {
	dp := ps.sub("det_decoder")
	d := &DetectionDecoder{layers: newDecoderLayers(dp, c, c.DecoderLayers)}
	d.lnF = newLayerNorm(dp, "ln_f", c.DModel)
	d.queries = dp.normal("query_embed.weight", 1, int64(c.NumQueries), int64(c.DModel)) // nn.Embedding's N(0,1)
	hp := ps.sub("det_head")
	d.class = newLinear(hp, "class_embed", c.DModel, c.NumClasses+1, true)
	d.attr = newLinear(hp, "attr_embed", c.DModel, c.NumAttributes, true)
	for i := range d.box {
		out := c.DModel
		if i == 2 {
			out = 4
		}
		d.box[i] = newLinear(hp, fmt.Sprintf("bbox_embed.layers.%d", i), c.DModel, out, true)
	}
	return d
}

// DetectionOutput is every decoder layer's prediction; the last layer is
// the model's answer, the others feed the auxiliary losses.
type DetectionOutput struct {
	Logits *torch.Tensor // [Ly,B,Q,C+1]
	Attrs  *torch.Tensor // [Ly,B,Q,A]
	Boxes  *torch.Tensor // [Ly,B,Q,4] normalised cx,cy,w,h in (0,1)
}

func (d *DetectionDecoder) forward(f *fwd, b int, mem memory) DetectionOutput {
	q := d.queries.Shape()                              // a leaf: reading its shape is free of autograd
	qpos := f.s.Use(d.queries)                          // [Q,d]
	x := qpos.Unsqueeze(0).Expand(int64(b), q[0], q[1]) // [B,Q,d]
	outs := make([]*torch.Tensor, 0, len(d.layers))
	for _, l := range d.layers {
		x = l.forward(f, x, qpos, nil, false, mem) // [B,Q,d]
		outs = append(outs, d.lnF.forward(x))      // Ly × [B,Q,d]
	}
	hs := torch.Stack(outs, 0)         // [Ly,B,Q,d]
	box := d.box[0].forward(hs).Relu() // [Ly,B,Q,d]
	box = d.box[1].forward(box).Relu() // [Ly,B,Q,d]
	return DetectionOutput{
		Logits: d.class.forward(hs),             // [Ly,B,Q,C+1]
		Attrs:  d.attr.forward(hs),              // [Ly,B,Q,A]
		Boxes:  d.box[2].forward(box).Sigmoid(), // [Ly,B,Q,4]
	}
}

// CaptionDecoder embeds caption tokens with the shared token embedding
// plus its own positions, and predicts the next token.
type CaptionDecoder struct {
	pos    *torch.Tensor // [MaxCaptionLen,d]
	ln     layerNormP    // embedding LayerNorm
	layers []decoderLayer
	lnF    layerNormP
	bias   *torch.Tensor // [V] output bias; the matrix is the token embedding
}

func newCaptionDecoder(ps *paramSet, c Config, det *DetectionDecoder) *CaptionDecoder {
	cp := ps.sub("cap_decoder")
	cd := &CaptionDecoder{}
	if c.SharedDecoder {
		cd.layers = det.layers
	} else {
		cd.layers = newDecoderLayers(cp, c, c.DecoderLayers)
	}
	cd.lnF = newLayerNorm(cp, "ln_f", c.DModel)
	cd.pos = cp.normal("pos_emb.weight", 0.02, int64(c.MaxCaptionLen), int64(c.DModel))
	cd.ln = newLayerNorm(cp, "ln", c.DModel)
	cd.bias = ps.sub("cap_head").constant("bias", 0, false, int64(c.VocabSize))
	return cd
}

// captionLogits: teacher-forced next-token logits for ids.
func (m *Model) captionLogits(f *fwd, ids, pad *torch.Tensor, mem memory) *torch.Tensor { // [B,T],[B,T] -> [B,T,V]
	cd := m.Caption
	t := ids.Shape()[1]
	pos := f.s.Use(cd.pos).Narrow(0, 0, t)                                           // [T,d]
	x := f.drop(cd.ln.forward(torch.Add(torch.Embedding(m.Text.tok, ids, -1), pos))) // [B,T,d]
	for _, l := range cd.layers {
		x = l.forward(f, x, nil, pad, true, mem)
	}
	return torch.Linear(cd.lnF.forward(x), m.Text.tok, cd.bias) // [B,T,V]
}

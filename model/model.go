package model

import (
	"fmt"

	"github.com/e2evlp/vlp/torch"
)

// Model is E2E-VLP: backbone → 1×1 projection → image tokens with 2-D sine
// positions; text embedding; the single-stream encoder with MLM and ITM
// heads; the detection and caption decoders on the image tokens. It owns
// its parameters (Close frees them).
type Model struct {
	Config   Config
	Device   torch.Device
	Backbone *Backbone
	proj     struct{ w, b *torch.Tensor } // input_proj: [d,C5,1,1], [d]
	Text     *TextEmbedding
	Encoder  *Encoder
	MLM      *mlmHead
	ITM      *itmHead
	Detect   *DetectionDecoder
	Caption  *CaptionDecoder

	params []*Param
	byName map[string]*Param
}

// New builds a model with freshly initialised parameters from seed.
func New(c Config, seed uint64, dev torch.Device) (*Model, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	ps := newParamSet(seed, dev)
	m, err := build(ps, c)
	if err == nil {
		err = ps.err
	}
	if err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// build lays out every component on ps (a dry ps only records shapes).
func build(ps *paramSet, c Config) (*Model, error) {
	m := &Model{Config: c, Device: ps.dev}
	bb, err := newBackbone(ps, c)
	if err != nil {
		return m, err
	}
	m.Backbone = bb
	pp := ps.sub("input_proj")
	m.proj.w = pp.uniform("weight", 1/sqrtF(bb.OutChannels), int64(c.DModel), int64(bb.OutChannels), 1, 1)
	m.proj.b = pp.constant("bias", 0, false, int64(c.DModel))
	m.Text = newTextEmbedding(ps, c)
	m.Encoder = newEncoder(ps, c)
	m.MLM = newMLMHead(ps, c)
	m.ITM = newITMHead(ps, c)
	m.Detect = newDetectionDecoder(ps, c)
	m.Caption = newCaptionDecoder(ps, c, m.Detect)
	m.params, m.byName = ps.list, ps.byName
	return m, nil
}

// Close frees every parameter and buffer.
func (m *Model) Close() {
	for _, p := range m.params {
		if p.T != nil {
			p.T.Close()
		}
	}
	m.params = nil
}

// Params lists every parameter and buffer, in creation order (stable for a
// given Config): the order of flat gradient buffers and checkpoints.
func (m *Model) Params() []*Param { return m.params }

// Param returns the named parameter or buffer, or nil.
func (m *Model) Param(name string) *Param { return m.byName[name] }

// Trainable returns the tensors the optimiser updates, in Params order.
func (m *Model) Trainable() []*torch.Tensor {
	var ts []*torch.Tensor
	for _, p := range m.params {
		if p.Trainable() {
			ts = append(ts, p.T)
		}
	}
	return ts
}

// NumParams counts elements: all parameters (buffers excluded) and the
// trainable ones.
func (m *Model) NumParams() (total, trainable int64) {
	for _, p := range m.params {
		if p.Buffer {
			continue
		}
		n := p.T.Numel()
		total += n
		if p.Trainable() {
			trainable += n
		}
	}
	return total, trainable
}

// Outputs are the raw predictions of one forward pass.
type Outputs struct {
	MLMLogits *torch.Tensor // [M,V] at the masked positions (nil when M = 0)
	ITMLogits *torch.Tensor // [B,2]
	Det       DetectionOutput
	CapLogits *torch.Tensor // [B,T-1,V] next-token logits
}

// imageTokens runs the backbone and the projection and flattens the map:
// features plus sine positions plus the image segment embedding, and the
// padding mask at feature resolution.
func (m *Model) imageTokens(f *fwd, in *Inputs) (tok, pos, pad *torch.Tensor) { // -> [B,hw,d], [B,hw,d], [B,hw]
	c5 := m.Backbone.forward(f, in.Images)                           // [B,C5,h,w]
	x := torch.Conv2d(c5, m.proj.w, m.proj.b, torch.Conv2dOptions{}) // [B,d,h,w]
	b, d := in.B, m.Config.DModel
	h, w := m.featureSize(in.H), m.featureSize(in.W)
	mask := featureMask(in.PixelMask, b, in.H, in.W, h, w)                                                             // [B,h,w] host
	pos = torch.FromFloat32(f.s, sinePositions(mask, b, h, w, d), []int64{int64(b), int64(h * w), int64(d)}, m.Device) // [B,hw,d]
	pad = torch.FromBool(f.s, mask, []int64{int64(b), int64(h * w)}, m.Device)                                         // [B,hw]
	x = x.Flatten(2, 3).Transpose(1, 2)                                                                                // [B,hw,d]
	tok = torch.Add(torch.Add(x, pos), m.Text.imageSegment(f))                                                         // [B,hw,d]
	return tok, pos, pad
}

// visualMemory is the encoder over [CLS] and the image tokens only: the
// memory both decoders attend to. The visual tasks never see the input
// text — it is (a masked copy of) the very caption the decoder must write,
// and at inference there is no text — so they get a pass of their own
// through the same encoder weights.
func (m *Model) visualMemory(f *fwd, in *Inputs, img, pos, imgPad *torch.Tensor) memory { // -> [B,hw,d] ×2
	hw := int64(m.featureSize(in.H) * m.featureSize(in.W))
	cls := in.TokenIDs.Narrow(1, 0, 1)                         // [B,1]
	clsPad := in.TokenPad.Narrow(1, 0, 1)                      // [B,1]
	v := m.encode(f, m.Text.text(f, cls), clsPad, img, imgPad) // [B,1+hw,d]
	val := v.Narrow(1, 1, hw)                                  // [B,hw,d]
	return memory{val: val, key: torch.Add(val, pos), pad: imgPad}
}

// Forward runs every task. train selects dropout and BatchNorm batch
// statistics; gen drives dropout (nil: the device's default generator).
func (m *Model) Forward(s *torch.Scope, in *Inputs, train bool, gen *torch.Generator) (*Outputs, error) {
	f := &fwd{s: s, train: train, dropout: m.Config.Dropout, gen: gen}
	img, pos, imgPad := m.imageTokens(f, in) // [B,hw,d], [B,hw,d], [B,hw]
	if err := img.Err(); err != nil {
		return nil, fmt.Errorf("model: backbone: %w", err)
	}
	// Encoder tasks on the full sequence.
	x := m.encode(f, m.Text.text(f, in.TokenIDs), in.TokenPad, img, imgPad) // [B,L+hw,d]
	out := &Outputs{}
	if in.NumMasked > 0 {
		d := int64(m.Config.DModel)
		text := x.Narrow(1, 0, int64(in.L)).Reshape(int64(in.B*in.L), d) // [B·L,d]
		out.MLMLogits = m.mlmLogits(text.IndexSelect(0, in.MLMIndex))    // [M,V]
	}
	out.ITMLogits = m.ITM.forward(x.Select(1, 0)) // [B,2]
	// Visual tasks on the image-only pass.
	mem := m.visualMemory(f, in, img, pos, imgPad)                 // values and keys [B,hw,d]
	out.Det = m.Detect.forward(f, in.B, mem)                       // [Ly,B,Q,·]
	out.CapLogits = m.captionLogits(f, in.CapIn, in.CapInPad, mem) // [B,T-1,V]
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("model: forward: %w", err)
	}
	return out, nil
}

// featureSize is the side of the C5 map for an input side of n pixels:
// each stride-2 layer (the 7×7 stem, the max-pool when kept, the first block of
// stages 2–4, or 2–3 when C5 is dilated) maps n to ⌊(n−1)/2⌋+1. Computing
// it on the host avoids reading a non-leaf tensor's shape.
func (m *Model) featureSize(n int) int {
	halvings := 5
	if m.Config.DilateC5 {
		halvings--
	}
	if m.Config.NoStemPool {
		halvings--
	}
	for i := 0; i < halvings; i++ {
		n = (n-1)/2 + 1
	}
	return n
}

package model

import (
	"fmt"

	"github.com/e2evlp/vlp/torch"
)

// The single-stream encoder: one transformer over [CLS] text [SEP] and the
// image tokens, every token attending to every other (key-padding masks
// hide the padding of both parts). Layers are pre-norm (LayerNorm before
// each sub-block, one final LayerNorm), which trains stably from scratch
// without the long warm-up post-norm BERT needs.

type encoderLayer struct {
	ln1  layerNormP
	attn attnP
	ln2  layerNormP
	ffn  ffnP
}

func newEncoderLayer(ps *paramSet, c Config) encoderLayer {
	return encoderLayer{
		ln1: newLayerNorm(ps, "ln1", c.DModel), attn: newAttention(ps, "attn", c.DModel, c.Heads),
		ln2: newLayerNorm(ps, "ln2", c.DModel), ffn: newFFN(ps, "ffn", c.DModel, c.FFN),
	}
}

func (l encoderLayer) forward(f *fwd, x, pad *torch.Tensor) *torch.Tensor { // [B,N,d], [B,N] -> [B,N,d]
	h := l.ln1.forward(x)                                            // [B,N,d]
	x = torch.Add(x, f.drop(l.attn.forward(f, h, h, h, pad, false))) // [B,N,d]
	return torch.Add(x, f.drop(l.ffn.forward(f, l.ln2.forward(x))))
}

// Encoder is the embedding LayerNorm, the layers and the final LayerNorm.
type Encoder struct {
	layers []encoderLayer
	lnF    layerNormP
}

func newEncoder(ps *paramSet, c Config) *Encoder {
	ps = ps.sub("encoder")
	e := &Encoder{lnF: layerNormP{}}
	for i := 0; i < c.EncoderLayers; i++ {
		e.layers = append(e.layers, newEncoderLayer(ps.sub(fmt.Sprintf("layers.%d", i)), c))
	}
	e.lnF = newLayerNorm(ps, "ln_f", c.DModel)
	return e
}

// encode runs the encoder over text (already embedded, no LayerNorm) and
// image tokens; pads are true on padding.
func (m *Model) encode(f *fwd, text, textPad, img, imgPad *torch.Tensor) *torch.Tensor { // [B,L,d],[B,L],[B,hw,d],[B,hw] -> [B,L+hw,d]
	x := f.drop(m.Text.ln.forward(torch.Cat([]*torch.Tensor{text, img}, 1))) // [B,L+hw,d]
	pad := torch.Cat([]*torch.Tensor{textPad, imgPad}, 1)                    // [B,L+hw]
	for _, l := range m.Encoder.layers {
		x = l.forward(f, x, pad)
	}
	return m.Encoder.lnF.forward(x)
}

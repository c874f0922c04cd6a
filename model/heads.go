package model

import "github.com/e2evlp/vlp/torch"

// The encoder's heads. MLM: BERT's transform (dense, ReLU, LayerNorm) then
// the output matrix, tied to the token embedding by default (see
// Config.TieMLM), with its own bias; it runs on the masked positions only,
// never on all B·L tokens (at base, [B·L, 30522] logits would cost 250 MB).
// ITM: a tanh pooler on [CLS], then 2 classes (1: the text matches).

type mlmHead struct {
	dense linearP
	ln    layerNormP
	out   *torch.Tensor // [V,d] untied output matrix, nil when tied
	bias  *torch.Tensor // [V]
}

func newMLMHead(ps *paramSet, c Config) *mlmHead {
	ps = ps.sub("mlm")
	h := &mlmHead{dense: newLinear(ps, "dense", c.DModel, c.DModel, true), ln: newLayerNorm(ps, "ln", c.DModel)}
	if !c.TieMLM {
		h.out = ps.normal("out.weight", 0.02, int64(c.VocabSize), int64(c.DModel))
	}
	h.bias = ps.constant("bias", 0, false, int64(c.VocabSize))
	return h
}

// forward maps the hidden states of masked tokens to vocabulary logits.
func (m *Model) mlmLogits(h *torch.Tensor) *torch.Tensor { // [M,d] -> [M,V]
	x := m.MLM.ln.forward(m.MLM.dense.forward(h).Relu()) // [M,d]
	w := m.Text.tok
	if m.MLM.out != nil {
		w = m.MLM.out
	}
	return torch.Linear(x, w, m.MLM.bias) // [M,V]
}

type itmHead struct{ pool, cls linearP }

func newITMHead(ps *paramSet, c Config) *itmHead {
	ps = ps.sub("itm")
	return &itmHead{pool: newLinear(ps, "pool", c.DModel, c.DModel, true), cls: newLinear(ps, "cls", c.DModel, 2, true)}
}

func (h *itmHead) forward(cls *torch.Tensor) *torch.Tensor { // [B,d] -> [B,2]
	return h.cls.forward(h.pool.forward(cls).Tanh())
}

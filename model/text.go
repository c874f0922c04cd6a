package model

import "github.com/e2evlp/vlp/torch"

// TextEmbedding is BERT's input embedding: token + learned position +
// segment (0: text, 1: image tokens), then LayerNorm and dropout. The
// LayerNorm runs over the whole single-stream sequence, image tokens
// included, so both modalities enter the encoder at the same scale.
type TextEmbedding struct {
	tok, pos, seg *torch.Tensor // [V,d], [MaxTextLen,d], [2,d]
	ln            layerNormP
}

func newTextEmbedding(ps *paramSet, c Config) *TextEmbedding {
	ps = ps.sub("text")
	d := int64(c.DModel)
	return &TextEmbedding{
		tok: ps.normal("tok_emb.weight", 0.02, int64(c.VocabSize), d),
		pos: ps.normal("pos_emb.weight", 0.02, int64(c.MaxTextLen), d),
		seg: ps.normal("seg_emb.weight", 0.02, 2, d),
		ln:  newLayerNorm(ps, "ln", c.DModel),
	}
}

// text embeds token ids without the LayerNorm (the encoder applies it to
// the joined sequence).
func (e *TextEmbedding) text(f *fwd, ids *torch.Tensor) *torch.Tensor { // [B,L] -> [B,L,d]
	l := ids.Shape()[1]
	pos := f.s.Use(e.pos).Narrow(0, 0, l)                                  // [L,d]
	seg := f.s.Use(e.seg).Narrow(0, 0, 1)                                  // [1,d]
	return torch.Add(torch.Add(torch.Embedding(e.tok, ids, -1), pos), seg) // [B,L,d]
}

// imageSegment is the segment embedding of image tokens.
func (e *TextEmbedding) imageSegment(f *fwd) *torch.Tensor { // [1,d]
	return f.s.Use(e.seg).Narrow(0, 1, 1)
}

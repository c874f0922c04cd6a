package model

import (
	"fmt"

	"github.com/e2evlp/vlp/torch"
)

// Ranking a retrieval test set pairs every image with every sentence: N×M
// passes of the single-stream encoder, far more than one batch holds (COCO
// 5K: 125 million). The encoder must see each pair, since it reads text and
// image tokens together, but what depends on the image alone (backbone,
// projection, positions, segment embedding) does not change from one
// sentence to the next: ITMImages computes it once per image, and
// ITMPairScores runs the encoder and the ITM head over rows of
// (image, text) pairs that index into it, so the backbone runs N times,
// not N×M. Both run in evaluation mode without gradient, as ITMScoreMatrix.

// ITMImages are images' tokens as the encoder reads them. Its tensors
// belong to the scope given to EncodeITMImages.
type ITMImages struct {
	N   int
	tok *torch.Tensor // [N,hw,d]
	pad *torch.Tensor // [N,hw] true on padding
}

// EncodeITMImages runs the backbone over the images of in (its text fields
// are not read).
func (m *Model) EncodeITMImages(s *torch.Scope, in *Inputs) (*ITMImages, error) {
	out := &ITMImages{N: in.B}
	torch.NoGrad(func() {
		out.tok, _, out.pad = m.imageTokens(&fwd{s: s}, in) // [N,hw,d], [N,hw]
	})
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("model: ITM images: %w", err)
	}
	return out, nil
}

// ITMPairScores is the ITM log-odds of a match, logit(match) −
// logit(no match), of R pairs: row r is image images[r] of img with the
// text tokenIDs[r·L:(r+1)·L] ([CLS] text [SEP] and padding, tokenMask true
// on padding), R = len(images). Give it a scope younger than img's, one
// per call: the pass's temporaries join it and are freed when it closes.
func (m *Model) ITMPairScores(s *torch.Scope, img *ITMImages, images []int, tokenIDs []int64, tokenMask []bool) ([]float64, error) {
	r := len(images)
	switch {
	case r == 0 || len(tokenIDs) == 0 || len(tokenIDs)%r != 0:
		return nil, fmt.Errorf("%w: ITM pairs: %d token ids for %d rows", ErrBatch, len(tokenIDs), r)
	case len(tokenMask) != len(tokenIDs):
		return nil, fmt.Errorf("%w: ITM pairs: %d mask values for %d token ids", ErrBatch, len(tokenMask), len(tokenIDs))
	}
	l := len(tokenIDs) / r
	idx := make([]int64, r)
	for k, i := range images {
		if i < 0 || i >= img.N {
			return nil, fmt.Errorf("%w: ITM pairs: row %d pairs image %d of %d", ErrBatch, k, i, img.N)
		}
		idx[k] = int64(i)
	}
	var out []float64
	var err error
	torch.NoGrad(func() {
		f := &fwd{s: s}
		ids := torch.FromInt64(s, tokenIDs, []int64{int64(r), int64(l)}, m.Device) // [R,L]
		pad := torch.FromBool(s, tokenMask, []int64{int64(r), int64(l)}, m.Device) // [R,L]
		at := torch.FromInt64(s, idx, []int64{int64(r)}, m.Device)                 // [R]
		var v []float32
		if v, err = m.itmLogOdds(f, m.Text.text(f, ids), pad, img.tok.IndexSelect(0, at), img.pad.IndexSelect(0, at)).Float32s(); err != nil { // [R]
			return
		}
		out = make([]float64, r)
		for k, val := range v {
			out[k] = float64(val)
		}
	})
	if err == nil {
		err = s.Err()
	}
	if err != nil {
		return nil, fmt.Errorf("model: ITM pair scores: %w", err)
	}
	return out, nil
}

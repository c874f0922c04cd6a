package model

import (
	"fmt"

	"github.com/e2evlp/vlp/torch"
)

// Inference passes: what a deployed E2E-VLP runs for one task, cut so that
// a latency benchmark can time each on its own. Each runs in evaluation
// mode (no dropout, BatchNorm running statistics) with no gradient. Upload
// in into s (BatchToTensors(s, …)): an op's result goes to the youngest
// scope among its inputs, so inputs in an older scope would leave the
// pass's temporaries there, alive until that scope closes.

// ImageTokens is how many image tokens the encoder sees for an h×w image:
// the C5 map's cells.
func (m *Model) ImageTokens(h, w int) int { return m.featureSize(h) * m.featureSize(w) }

// Understand is the single-stream pass an understanding task (ITM,
// retrieval, VQA after fine-tuning) runs per image–text pair: backbone →
// image tokens → the encoder over [CLS] text [SEP] and the image tokens →
// the ITM head. No decoder runs.
func (m *Model) Understand(s *torch.Scope, in *Inputs) (*torch.Tensor, error) { // -> [B,2]
	var out *torch.Tensor
	torch.NoGrad(func() {
		f := &fwd{s: s}
		img, _, imgPad := m.imageTokens(f, in)                                  // [B,hw,d], [B,hw]
		x := m.encode(f, m.Text.text(f, in.TokenIDs), in.TokenPad, img, imgPad) // [B,L+hw,d]
		out = m.ITM.forward(x.Select(1, 0))                                     // [B,2]
	})
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("model: understand: %w", err)
	}
	return out, nil
}

// DetectObjects runs detection: the backbone, an encoder pass and the
// detection decoder — the detector forward alone, as DETR runs it.
//
// withText false is how the model trains and infers: the encoder sees
// [CLS] and the image tokens only (visualMemory). withText true is the
// paper's study "detection with the paired text": the decoder reads the
// image tokens' outputs of the pass over [CLS] text [SEP] + image tokens,
// so text can inform the visual features through self-attention. A model
// trained without text meets this memory for the first time at
// evaluation: the study then measures how much the paired text disturbs
// (or helps) a text-free detector, not a detector trained with text.
func (m *Model) DetectObjects(s *torch.Scope, in *Inputs, withText bool) (DetectionOutput, error) {
	var out DetectionOutput
	torch.NoGrad(func() {
		f := &fwd{s: s}
		img, pos, imgPad := m.imageTokens(f, in) // [B,hw,d], [B,hw,d], [B,hw]
		var mem memory
		if withText {
			hw := int64(m.featureSize(in.H) * m.featureSize(in.W))
			x := m.encode(f, m.Text.text(f, in.TokenIDs), in.TokenPad, img, imgPad) // [B,L+hw,d]
			val := x.Narrow(1, int64(in.L), hw)                                     // [B,hw,d]
			mem = memory{val: val, key: torch.Add(val, pos), pad: imgPad}
		} else {
			mem = m.visualMemory(f, in, img, pos, imgPad) // [B,hw,d] ×2
		}
		out = m.Detect.forward(f, in.B, mem) // [Ly,B,Q,·]
	})
	if err := s.Err(); err != nil {
		return DetectionOutput{}, fmt.Errorf("model: detect (text %v): %w", withText, err)
	}
	return out, nil
}

// EncodeRegions is the second step of a two-step (region-feature) model,
// run on this model's encoder: [CLS] text [SEP] and R region features
// (already projected to d, as a region-feature model projects its 2048-d
// Faster R-CNN features) through the encoder and the ITM head. Its cost
// does not depend on the regions' values, so a benchmark may pass any.
func (m *Model) EncodeRegions(s *torch.Scope, in *Inputs, regions *torch.Tensor) (*torch.Tensor, error) { // [B,R,d] -> [B,2]
	var out *torch.Tensor
	torch.NoGrad(func() {
		f := &fwd{s: s}
		r := regions.Shape()[1]
		pad := torch.Zeros(s, []int64{int64(in.B), r}, torch.Bool, m.Device) // [B,R]
		img := torch.Add(regions, m.Text.imageSegment(f))                    // [B,R,d]
		x := m.encode(f, m.Text.text(f, in.TokenIDs), in.TokenPad, img, pad) // [B,L+R,d]
		out = m.ITM.forward(x.Select(1, 0))                                  // [B,2]
	})
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("model: encode regions: %w", err)
	}
	return out, nil
}

package model

import (
	"fmt"

	"github.com/e2evlp/vlp/data"
	"github.com/e2evlp/vlp/torch"
)

// Captioning fine-tunes the pretraining caption decoder with its own loss;
// nothing is added. CaptionForward runs that task alone: no MLM, ITM or
// detection, so a captioning job neither pays for the other heads nor
// needs their targets. Evaluation writes captions with BeamCaptions.

// CaptionForward gives the teacher-forced next-token logits of each
// caption and the loss "caption" — the cross-entropy of Criterion's
// "caption", padding ignored. It reads from in only Images, PixelMask,
// the [CLS] column of TokenIDs and TokenPad (the image-only encoder pass
// starts with it), CapIn, CapInPad and CapTarget: a data.Batch through
// BatchToTensors has them. train and gen as in Forward.
func (m *Model) CaptionForward(s *torch.Scope, in *Inputs, train bool, gen *torch.Generator) (*torch.Tensor, Losses, error) { // -> [B,T-1,V]
	if in.CapIn == nil || in.CapInPad == nil || in.CapTarget == nil || in.TokenIDs == nil || in.TokenPad == nil {
		return nil, Losses{}, fmt.Errorf("%w: captioning needs images, [CLS] ids and captions", ErrBatch)
	}
	f := &fwd{s: s, train: train, dropout: m.Config.Dropout, gen: gen}
	img, pos, imgPad := m.imageTokens(f, in)                 // [B,hw,d], [B,hw,d], [B,hw]
	mem := m.visualMemory(f, in, img, pos, imgPad)           // values and keys [B,hw,d]
	logits := m.captionLogits(f, in.CapIn, in.CapInPad, mem) // [B,T-1,V]
	v := int64(m.Config.VocabSize)
	loss := torch.CrossEntropy(logits.Reshape(-1, v), in.CapTarget.Reshape(-1), nil, data.IgnoreIndex, torch.ReduceMean)
	if err := s.Err(); err != nil {
		return nil, Losses{}, fmt.Errorf("model: caption forward: %w", err)
	}
	return logits, taskLosses("caption", loss), nil
}

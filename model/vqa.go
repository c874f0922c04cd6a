package model

import (
	"fmt"
	"math"

	"github.com/e2evlp/vlp/torch"
)

// VQA as multi-label classification over an answer vocabulary (the usual
// 3,129 answers of VQA v2): the pooled pair through a two-layer MLP, one
// logit per answer, trained with binary cross-entropy against the soft VQA
// scores — min(#humans/3, 1) averaged over annotator subsets, 0.3, 0.6,
// 0.9 or 1 for 1, 2, 3, ≥ 4 of ten humans (downstream.AnswerVocab.Targets).
//
// The loss is PyTorch's mean BCE over the B·A elements multiplied by A,
// that is, summed over answers and averaged over rows: UNITER's scaling.
// A plain mean over B·A would divide the gradient of the few answers that
// matter by 3,129.

// VQAPrefix names the VQA head's parameters.
const VQAPrefix = "vqa_head"

// VQAHead is the answer classifier.
type VQAHead struct {
	Answers int // A: the answer vocabulary's size
	mlp     classifierMLP
	params  []*Param
}

// NewVQAHead builds the head for answers classes on a model of c's width,
// initialised from seed (BERT's N(0, 0.02²) weights, zero biases).
func NewVQAHead(c Config, answers int, seed uint64, dev torch.Device) (*VQAHead, error) {
	if answers < 1 {
		return nil, fmt.Errorf("%w: VQA head: %d answers, want at least 1", ErrConfig, answers)
	}
	if c.DModel < 1 {
		return nil, fmt.Errorf("%w: VQA head: DModel %d", ErrConfig, c.DModel)
	}
	ps := headParams(VQAPrefix, seed, dev)
	h := &VQAHead{Answers: answers, mlp: newClassifierMLP(ps, c.DModel, 2*c.DModel, answers)}
	h.params = ps.list
	if ps.err != nil {
		h.Close()
		return nil, ps.err
	}
	return h, nil
}

// Prefix is VQAPrefix.
func (h *VQAHead) Prefix() string { return VQAPrefix }

// Params lists the head's parameters: dense, ln, out.
func (h *VQAHead) Params() []*Param { return h.params }

// Close frees the head's parameters.
func (h *VQAHead) Close() { closeParams(h.params) }

// AnswerTarget is one non-zero entry of a question's soft target. It has
// the fields of downstream.AnswerScore, so model.AnswerTarget(score)
// converts one.
type AnswerTarget struct {
	Class int
	Score float64
}

// VQATargets builds the dense soft-target matrix [B,A] of a batch, one row
// per question; a question may have no target (a row of zeros: every
// answer pushed down).
func VQATargets(s *torch.Scope, rows [][]AnswerTarget, answers int, dev torch.Device) (*torch.Tensor, error) {
	if len(rows) < 1 || answers < 1 {
		return nil, fmt.Errorf("%w: VQA targets: %d rows, %d answers", ErrBatch, len(rows), answers)
	}
	dense := make([]float32, len(rows)*answers) // [B,A]
	for i, row := range rows {
		for _, t := range row {
			if t.Class < 0 || t.Class >= answers {
				return nil, fmt.Errorf("%w: VQA targets: row %d: class %d outside [0,%d)", ErrBatch, i, t.Class, answers)
			}
			if !(t.Score >= 0 && t.Score <= 1) || math.IsNaN(t.Score) {
				return nil, fmt.Errorf("%w: VQA targets: row %d: class %d: score %v outside [0,1]", ErrBatch, i, t.Class, t.Score)
			}
			dense[i*answers+t.Class] = float32(t.Score)
		}
	}
	t := torch.FromFloat32(s, dense, []int64{int64(len(rows)), int64(answers)}, dev) // [B,A]
	if err := t.Err(); err != nil {
		return nil, fmt.Errorf("model: VQA targets: %w", err)
	}
	return t, nil
}

// Forward scores every answer for each question–image pair of in (the
// fields PairsToTensors fills) and, when targets [B,A] is not nil, the loss
// "vqa". train selects dropout and BatchNorm batch statistics; gen drives
// dropout. Gradients reach the head, the pooler, the encoder, the text
// embedding and the backbone.
func (h *VQAHead) Forward(s *torch.Scope, m *Model, in *Inputs, targets *torch.Tensor, train bool, gen *torch.Generator) (*torch.Tensor, Losses, error) { // -> [B,A]
	f := &fwd{s: s, train: train, dropout: m.Config.Dropout, gen: gen}
	logits := h.mlp.forward(m.pooledPairs(f, in)) // [B,A]
	var ls Losses
	if targets != nil {
		ls = taskLosses("vqa", vqaLoss(logits, targets, h.Answers))
	}
	if err := s.Err(); err != nil {
		return nil, Losses{}, fmt.Errorf("model: VQA forward: %w", err)
	}
	return logits, ls, nil
}

// vqaLoss is BCE with logits summed over answers, averaged over rows.
func vqaLoss(logits, targets *torch.Tensor, answers int) *torch.Tensor { // [B,A], [B,A] -> []
	return torch.BCEWithLogits(logits, targets, nil, nil, torch.ReduceMean).MulScalar(float64(answers))
}

// VQAPredict is each row's highest-scoring answer class.
func VQAPredict(logits *torch.Tensor) ([]int, error) { // [B,A] -> B classes
	idx, err := logits.Detach().Argmax(1, false).Int64s() // [B]
	if err != nil {
		return nil, fmt.Errorf("model: VQA predict: %w", err)
	}
	out := make([]int, len(idx))
	for i, v := range idx {
		out[i] = int(v)
	}
	return out, nil
}

package train

import (
	"fmt"
	"math"
	"time"

	"github.com/e2evlp/vlp/model"
	"github.com/e2evlp/vlp/torch"
)

// The forward pass and loss of a fine-tuning task, in place of pretraining's (model.TrainStep):
//
//	vqa        VQAHead.Forward on PairsToTensors + VQATargets     "vqa"
//	nlvr2      NLVR2Head.Forward on NLVR2ToTensors                "nlvr2"
//	caption    Model.CaptionForward on BatchToTensors             "caption"
//	retrieval  Model.RetrievalForward on PairsToTensors + ids     "retrieval"
//
// Each loss is a mean over the batch's rows (retrieval's over its positives and mined
// negatives), as pretraining's are: the learner scales it to a sum over rows for the ring.

// newTaskHead builds the head of task for a model of c (nil: the task trains pretrained heads).
func newTaskHead(task Task, c model.Config, answers int, seed uint64, dev torch.Device) (model.TaskHead, error) {
	switch task {
	case TaskVQA:
		return model.NewVQAHead(c, answers, seed, dev)
	case TaskNLVR2:
		return model.NewNLVR2Head(c, seed, dev)
	}
	return nil, nil
}

// headSeed is the seed of a job's task head: its own, so that the head initialises the same
// whatever the model's parameters come from.
func headSeed(seed uint64) uint64 { return mixSeed(seed, 0x4845_4144, 0) }

// taskForward runs b's forward pass and loss on m (and head) in s.
func taskForward(s *torch.Scope, m *model.Model, head model.TaskHead, b *taskBatch, train bool, gen *torch.Generator) (model.Losses, error) {
	dev := m.Device
	switch {
	case b.nlvr2 != nil:
		in, err := model.NLVR2ToTensors(s, b.nlvr2, dev)
		if err != nil {
			return model.Losses{}, err
		}
		_, ls, err := head.(*model.NLVR2Head).Forward(s, m, in, train, gen) // [B,2]
		return ls, err
	case b.caption != nil:
		in, err := model.BatchToTensors(s, b.caption, dev)
		if err != nil {
			return model.Losses{}, err
		}
		_, ls, err := m.CaptionForward(s, in, train, gen) // [B,T-1,V]
		return ls, err
	case b.targets != nil:
		in, err := model.PairsToTensors(s, b.pairs, dev)
		if err != nil {
			return model.Losses{}, err
		}
		h := head.(*model.VQAHead)
		tg, err := model.VQATargets(s, b.targets, h.Answers, dev) // [B,A]
		if err != nil {
			return model.Losses{}, err
		}
		_, ls, err := h.Forward(s, m, in, tg, train, gen) // [B,A]
		return ls, err
	case b.pairs != nil:
		in, err := model.PairsToTensors(s, b.pairs, dev)
		if err != nil {
			return model.Losses{}, err
		}
		out, err := m.RetrievalForward(s, in, b.imageIDs, train, gen) // logits [R,2]
		if err != nil {
			return model.Losses{}, err
		}
		return out.Losses, nil
	}
	return model.Losses{}, fmt.Errorf("train: an empty task batch")
}

// taskStep is model.TrainStepWith for a task: forward and loss, the losses to the host (the
// step's sync, failing on a non-finite one before backward), afterForward, backward — under bf16
// autocast when bf16.
func taskStep(s *torch.Scope, m *model.Model, head model.TaskHead, b *taskBatch, gen *torch.Generator, bf16 bool, afterForward func(model.StepResult) error) (model.StepResult, error) {
	var (
		r   model.StepResult
		err error
	)
	run := func() {
		t0 := time.Now()
		var ls model.Losses
		if ls, err = taskForward(s, m, head, b, true, gen); err != nil {
			return
		}
		if r.Losses, err = ls.Values(); err != nil {
			return
		}
		r.Forward = time.Since(t0)
		for name, v := range r.Losses {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				err = fmt.Errorf("%w: %s = %v", model.ErrNonFinite, name, v)
				return
			}
		}
		if afterForward != nil {
			if err = afterForward(r); err != nil {
				return
			}
		}
		t1 := time.Now()
		if err = ls.Total.Backward(); err != nil {
			err = fmt.Errorf("train: backward: %w", err)
			return
		}
		r.Backward = time.Since(t1)
	}
	if !bf16 {
		run()
		return r, err
	}
	if aerr := torch.Autocast(torch.BFloat16, run); aerr != nil && err == nil {
		err = aerr
	}
	return r, err
}

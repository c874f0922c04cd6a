package train

import (
	"fmt"

	"github.com/e2evlp/vlp/worker"
)

// Task is what a job trains: E2E-VLP's pretraining, or one of the paper's fine-tuning tasks on
// the records of package downstream (docs/finetune.md). A fine-tuning job is a job of the same
// coordinator and workers: its examples are numbered like pretraining's pairs, cut into the same
// work units, all-reduced, checkpointed and resumed the same way; only the forward pass and its
// loss differ (model's task heads).
type Task string

// The tasks of a job spec's task field.
const (
	TaskPretrain  Task = ""          // MLM, ITM, detection and captioning on pairs (also spelt "pretrain")
	TaskVQA       Task = "vqa"       // VQA v2 questions: the answer classifier, BCE over soft scores
	TaskNLVR2     Task = "nlvr2"     // NLVR2 statements about image pairs: the pair classifier, CE
	TaskCaption   Task = "caption"   // Karpathy-split captions: the caption decoder's loss alone
	TaskRetrieval Task = "retrieval" // Karpathy-split captions: ITM with hard negatives mined in the batch
)

// Tasks lists the fine-tuning tasks.
var Tasks = []Task{TaskVQA, TaskNLVR2, TaskCaption, TaskRetrieval}

// ParseTask reads a job spec's task field; anything else is an error naming the field.
func ParseTask(s string) (Task, error) {
	if s == "" || s == "pretrain" {
		return TaskPretrain, nil
	}
	for _, t := range Tasks {
		if string(t) == s {
			return t, nil
		}
	}
	return TaskPretrain, fmt.Errorf("%w: task %q: want pretrain, vqa, nlvr2, caption or retrieval", worker.ErrJobSpec, s)
}

// FineTuning reports whether t is a fine-tuning task.
func (t Task) FineTuning() bool { return t != TaskPretrain }

// DefaultLR is the task's peak learning rate when hyper.lr is absent. Fine-tuning starts from
// pretrained weights and moves them less than pretraining does: UNITER and LXMERT fine-tune at
// 5e-5 – 1e-4 on base-sized models. The new heads (VQA, NLVR2) start from noise at the same rate;
// captioning and retrieval train pretrained heads only. The tiny preset, pretrained from scratch
// at 1e-3 by the learning test, fine-tunes at 3e-4: the rate of the fine-tuning learning tests
// (TestFinetuneLearns; docs/BENCHMARKS.md has what it reached).
func (t Task) DefaultLR(preset string) float64 {
	if preset == "tiny" {
		return 3e-4
	}
	switch t {
	case TaskVQA, TaskNLVR2:
		return 1e-4
	default:
		return 5e-5
	}
}

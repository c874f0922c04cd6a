package train

import (
	"fmt"

	"github.com/e2evlp/vlp/model"
	"github.com/e2evlp/vlp/torch"
	"github.com/e2evlp/vlp/worker"
)

// TaskConfig makes a Learner fine-tune: the task's examples, its head (VQA, NLVR2) and, when
// Pretrained is set, the pretraining checkpoint its fresh parameters are initialised from. The
// Learner's contract stays the same — gradients of the summed loss, the buckets' overlap,
// prefetching, Snapshot and Restore (the head's parameters included).
type TaskConfig struct {
	Task     Task
	Examples *TaskExamples
	// Pretrained, when not nil, overwrites every parameter it has after Init (the heads it lacks
	// keep their initialisation from the seed); OnInit, when not nil, is told what was loaded.
	Pretrained *Pretrained
	OnInit     func(model.InitReport)
}

// validate checks t against the learner's configuration.
func (t *TaskConfig) validate(cfg Config) error {
	switch {
	case !t.Task.FineTuning():
		return fmt.Errorf("%w: TaskConfig.Task is %q, not a fine-tuning task", worker.ErrConfig, t.Task)
	case t.Examples == nil || t.Examples.Records == nil || t.Examples.Records.Len() == 0:
		return fmt.Errorf("%w: task %s has no examples", worker.ErrConfig, t.Task)
	case t.Examples.Records.Task != t.Task:
		return fmt.Errorf("%w: task %s given the records of %s", worker.ErrConfig, t.Task, t.Examples.Records.Task)
	case t.Examples.Tokenizer == nil:
		return fmt.Errorf("%w: task %s has no tokenizer", worker.ErrConfig, t.Task)
	case t.Examples.PerUnit != cfg.PerUnit:
		return fmt.Errorf("%w: task examples cut %d per unit, the job %d", worker.ErrConfig, t.Examples.PerUnit, cfg.PerUnit)
	}
	if t.Pretrained != nil {
		if err := t.Pretrained.Check(cfg.Model); err != nil {
			return err
		}
	}
	return nil
}

// answers is the VQA head's size.
func (t *TaskConfig) answers() int {
	if t.Task == TaskVQA {
		return t.Examples.Records.Answers.Len()
	}
	return 0
}

// newHead builds the task's head from the job's seed (nil for pretraining and for the tasks
// that train pretrained heads).
func (t *TaskConfig) newHead(c model.Config, seed uint64, dev torch.Device) (model.TaskHead, error) {
	if t == nil {
		return nil, nil
	}
	h, err := newTaskHead(t.Task, c, t.answers(), headSeed(seed), dev)
	if err != nil {
		return nil, fmt.Errorf("train: %s head: %w", t.Task, err)
	}
	return h, nil
}

// initFromPretrained loads the pretraining checkpoint's parameters into params.
func (t *TaskConfig) initFromPretrained(params []*model.Param) error {
	if t == nil || t.Pretrained == nil {
		return nil
	}
	rep, err := model.InitFromPretrained(params, t.Pretrained.Params)
	if err != nil {
		return fmt.Errorf("train: init from %s: %w", t.Pretrained.Ref, err)
	}
	if t.OnInit != nil {
		t.OnInit(rep)
	}
	return nil
}

// backward runs b's forward pass, loss and backward: pretraining's (Engine.Backward) or the
// task's.
func (l *Learner) backward(s *torch.Scope, b *stepBatch, afterForward func(model.StepResult) error) (model.StepResult, error) {
	if b.task == nil {
		return l.e.Backward(s, b.pre, afterForward)
	}
	return taskStep(s, l.e.m, l.head, b.task, l.e.gen, l.e.cfg.BF16, afterForward)
}

// Head is the task's head (nil for pretraining, captioning and retrieval).
func (l *Learner) Head() model.TaskHead { return l.head }

func (l *Learner) closeHead() {
	if l.head != nil {
		l.head.Close()
		l.head = nil
	}
}

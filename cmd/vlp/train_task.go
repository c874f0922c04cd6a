package main

import (
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/e2evlp/vlp/coordinator"
	"github.com/e2evlp/vlp/model"
	"github.com/e2evlp/vlp/torch"
	"github.com/e2evlp/vlp/train"
	"github.com/e2evlp/vlp/worker"
)

// A fine-tuning job (spec task: vqa, nlvr2, caption, retrieval) trains through the same
// commands as pretraining — `vlp train --task T --init-from STORE[#ID] --data RECORDS` with
// --local or distributed, and `vlp worker join` for a submitted spec — and its learner is built
// here, in one place for every mode (docs/finetune.md).

// taskRecordsPath is the records file of a task job: records overrides the spec's path (a worker
// whose storage mounts it elsewhere); the file must match the spec's checksum.
func taskRecordsPath(spec coordinator.JobSpec, records string) (string, error) {
	if records == "" || records == "synth" {
		records = spec.Dataset.Manifest
	}
	sum, err := fileSHA256(records)
	if err != nil {
		return "", fmt.Errorf("worker: task records: %w", err)
	}
	if want := spec.Dataset.SHA256; want != "" && want != sum {
		return "", fmt.Errorf("worker: %s has sha256 %s, the job's records %s", records, sum, want)
	}
	return records, nil
}

// taskLearnerConfig is the learner of fine-tuning job spec on device dev: the model of the
// pretraining checkpoint init_from names (its preset, its job's tokenizer, classes and
// attributes, its layout checked) — or, without init_from, the spec's preset with the synthetic
// world's tokenizer — plus the task's head, trained as train.Resolve says on the task's records
// (records overrides the spec's path). logTaskInit reports what initialisation loaded.
func taskLearnerConfig(spec coordinator.JobSpec, records string, dev torch.Device, threads int) (train.Config, error) {
	var cfg train.Config
	path, err := taskRecordsPath(spec, records)
	if err != nil {
		return cfg, err
	}
	job, err := train.Resolve(spec, spec.Units.Pairs)
	if err != nil {
		return cfg, err
	}
	if err := job.Train.CheckDevice(dev); err != nil {
		return cfg, err
	}
	recs, err := train.LoadTaskRecords(job.Task, path, job.Options.AnswerMinCount)
	if err != nil {
		return cfg, err
	}
	if spec.Units.Pairs != 0 && spec.Units.Pairs != int64(recs.Len()) {
		return cfg, fmt.Errorf("worker: the job has %d examples per epoch, %s %d", spec.Units.Pairs, path, recs.Len())
	}
	// The model's shapes and the tokenizer: the pretraining job's, else this spec's preset on the
	// synthetic world's vocabulary.
	base := spec
	var pre *train.Pretrained
	if spec.InitFrom != "" {
		if pre, err = train.OpenPretrained(spec.InitFrom); err != nil {
			return cfg, err
		}
		if pre.Spec.Model != spec.Model {
			return cfg, fmt.Errorf("%w: model %s, but init_from %s was pretrained as %s", worker.ErrJobSpec, spec.Model, pre.Ref, pre.Spec.Model)
		}
		base = pre.Spec
	} else {
		base.Task, base.Dataset, base.Options = "", coordinator.DatasetSpec{}, map[string]string{}
	}
	tok, classes, attrs, err := jobVocabularies(base, "", "")
	if err != nil {
		return cfg, fmt.Errorf("worker: the tokenizer of %s: %w", describeBase(pre), err)
	}
	baseJob, err := train.Resolve(base, max(base.Units.Pairs, 1))
	if err != nil {
		return cfg, fmt.Errorf("worker: %s: %w", describeBase(pre), err)
	}
	baseJob.FitData(tok.Vocab().Size(), classes, attrs)
	m := baseJob.Model
	if spec.Dropout != nil {
		m.Dropout = *spec.Dropout
	}
	m.ChannelsLast = job.Model.ChannelsLast // this job's options.channels_last, not the pretraining job's
	perUnit := uint32(max(spec.Units.PerUnit, 1))
	dc := job.DataConfig()
	dc.MaxTextLen, dc.MaxCaptionLen = m.MaxTextLen, m.MaxCaptionLen
	cfg = train.Config{
		Model: m, Train: job.Train, Device: dev, Data: dc, PerUnit: perUnit, Seed: spec.Seed, Threads: threads,
		Overlap: job.Overlap(), BucketBytes: job.BucketBytes(), Tokenizer: tok,
		Task: &train.TaskConfig{
			Task:       job.Task,
			Examples:   &train.TaskExamples{Records: recs, Tokenizer: tok, Data: dc, Seed: spec.Seed, PerUnit: perUnit},
			Pretrained: pre,
		},
	}
	if pre != nil {
		if err := pre.Check(m); err != nil {
			return cfg, err
		}
	}
	return cfg, nil
}

// logTaskInit makes a task learner report to log what its initialisation loaded from the
// pretraining checkpoint: how many parameters, and which are new (the head).
func logTaskInit(cfg *train.Config, log *slog.Logger) {
	t := cfg.Task
	if t == nil || t.Pretrained == nil {
		return
	}
	pre := t.Pretrained
	t.OnInit = func(r model.InitReport) {
		log.Info("initialised from the pretraining checkpoint", "task", string(t.Task), "checkpoint", pre.Ref, "step", pre.Step,
			"loaded", len(r.Loaded), "new", len(r.New), "unused", len(r.Unused), "report", r.String())
	}
}

// describeBase names where a task job's model shapes come from.
func describeBase(pre *train.Pretrained) string {
	if pre == nil {
		return "the synthetic world"
	}
	return "init_from " + pre.Ref
}

// taskRecordsAbs is path made absolute with its sha256, for a spec's dataset.
func taskRecordsAbs(path string) (coordinator.DatasetSpec, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return coordinator.DatasetSpec{}, err
	}
	sum, err := fileSHA256(abs)
	if err != nil {
		return coordinator.DatasetSpec{}, fmt.Errorf("train: --data: %w", err)
	}
	return coordinator.DatasetSpec{Manifest: abs, SHA256: sum}, nil
}

package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/e2evlp/vlp/checkpoint"
	"github.com/e2evlp/vlp/coordinator"
	"github.com/e2evlp/vlp/downstream"
	"github.com/e2evlp/vlp/model"
	"github.com/e2evlp/vlp/synth"
	"github.com/e2evlp/vlp/torch"
	"github.com/e2evlp/vlp/train"
	"github.com/e2evlp/vlp/worker"
	"github.com/urfave/cli/v2"
)

// taskView is what a fine-tuning learner is built from, in terms every mode shares.
type taskView struct {
	Task       train.Task
	InitFrom   string // the checkpoint read, STORE#ID; "" from the seed
	Examples   int
	Answers    int
	Model      model.Config
	Train      model.TrainConfig
	ImageSize  int
	PerUnit    uint32
	Threads    int
	Vocab      int
	BucketSize int
	Overlap    bool // a distributed worker's all-reduce during backward (--local has none)
}

func taskViewOf(cfg train.Config) taskView {
	t := cfg.Task
	v := taskView{Task: t.Task, Examples: t.Examples.Records.Len(), Model: cfg.Model, Train: cfg.Train, ImageSize: cfg.Data.Image.Square,
		PerUnit: cfg.PerUnit, Threads: cfg.Threads, Vocab: cfg.Tokenizer.Vocab().Size(), BucketSize: cfg.BucketBytes}
	if t.Examples.Records.Answers != nil {
		v.Answers = t.Examples.Records.Answers.Len()
	}
	if t.Pretrained != nil {
		v.InitFrom = t.Pretrained.Ref
	}
	return v
}

// taskFixture is a pretraining checkpoint of the synthetic world (a fresh tiny model's
// parameters, the job spec recorded as a run records it) and synthetic VQA records.
type taskFixture struct {
	store, records string
	spec           coordinator.JobSpec
}

func newTaskFixture(t *testing.T) taskFixture {
	t.Helper()
	if err := torch.Load(shimPath(t)); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := synth.ExportVQA(synth.FinetuneConfig{World: synth.Config{Seed: 2, Images: 60, Width: 64, Height: 64, MaxObjects: 2}, Workers: 2}, dir); err != nil {
		t.Fatal(err)
	}
	set, _, err := downstream.ImportVQA(downstream.VQAConfig{Questions: filepath.Join(dir, synth.VQAQuestionsFile(synth.VQATrain)),
		Annotations: filepath.Join(dir, synth.VQAAnnotationsFile(synth.VQATrain)), ImageDir: filepath.Join(dir, synth.VQATrain)})
	if err != nil {
		t.Fatal(err)
	}
	f := taskFixture{records: filepath.Join(dir, "vqa.json"), store: filepath.Join(dir, "pre", "checkpoints.db")}
	if err := writeJSONFile(f.records, set); err != nil {
		t.Fatal(err)
	}
	// The pretraining job: what `vlp train --images 8` submits.
	f.spec = coordinator.JobSpec{Name: "train", Model: "tiny", GlobalBatch: 16, Seed: 1, Epochs: 1,
		Hyper: coordinator.HyperParams{LR: 5e-4, MaxSteps: 10}, Units: coordinator.UnitsSpec{Pairs: 40, PerUnit: 8},
		Options: map[string]string{train.OptImages: "8", train.OptImageSize: "64"}}.WithDefaults()
	tok, classes, attrs, err := jobVocabularies(f.spec, "", "")
	if err != nil {
		t.Fatal(err)
	}
	job, err := train.Resolve(f.spec, 40)
	if err != nil {
		t.Fatal(err)
	}
	job.FitData(tok.Vocab().Size(), classes, attrs)
	m, err := model.New(job.Model, 1, torch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	snap := &checkpoint.Snapshot{Meta: checkpoint.Meta{Step: 10, Layout: m.Config.Layout()}}
	if snap.Meta.JobSpec, err = json.Marshal(f.spec); err != nil {
		t.Fatal(err)
	}
	for _, p := range m.Params() {
		buf := make([]float32, p.T.Numel())
		if err := torch.FlattenParams([]*torch.Tensor{p.T}, buf); err != nil {
			t.Fatal(err)
		}
		x := checkpoint.Float32Tensor(p.Name, buf)
		x.Shape = p.Shape
		snap.Params = append(snap.Params, x)
	}
	if err := os.MkdirAll(filepath.Dir(f.store), 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := checkpoint.Open(f.store, checkpoint.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Save(snap); err != nil {
		t.Fatal(err)
	}
	return f
}

// localTaskView is `vlp train --local --task …`'s learner.
func localTaskView(t *testing.T, args ...string) (taskView, error) {
	t.Helper()
	var v taskView
	err := withCommand(t, trainCommand, nil, append([]string{"--torch-lib", shimPath(t), "train", "--local"}, args...), func(c *cli.Context) error {
		if err := checkTrainFlags(c); err != nil {
			return err
		}
		r, err := newLocalTaskRun(c)
		if err != nil {
			return err
		}
		v = taskViewOf(r.cfg)
		v.BucketSize = 0 // --local has no all-reduce
		return nil
	})
	return v, err
}

// distributedTaskView is worker 0's learner in `vlp train --task …`: the submitted spec through
// JSON, and the worker's own arguments through `vlp worker join`'s flags.
func distributedTaskView(t *testing.T, args ...string) (taskView, coordinator.JobSpec, error) {
	t.Helper()
	var (
		spec  coordinator.JobSpec
		wargs []string
	)
	dir := t.TempDir()
	err := withCommand(t, trainCommand, nil, append([]string{"--torch-lib", shimPath(t), "train", "--dir", dir}, args...), func(c *cli.Context) error {
		if err := checkTrainFlags(c); err != nil {
			return err
		}
		s, err := trainSpec(c, 2, dir)
		if err != nil {
			return err
		}
		if err := resolveTrainSpec(c, s); err != nil {
			return err
		}
		b, _ := json.Marshal(s)
		if err := json.Unmarshal(b, &spec); err != nil {
			return err
		}
		wargs, err = trainWorkerArgs(c, 0, "nats://127.0.0.1:4222", dir)
		return err
	})
	if err != nil {
		return taskView{}, spec, err
	}
	v, err := workerTaskView(t, spec, wargs)
	return v, spec, err
}

// workerTaskView is the learner `vlp worker join args…` builds for spec.
func workerTaskView(t *testing.T, spec coordinator.JobSpec, args []string) (taskView, error) {
	t.Helper()
	var v taskView
	err := withCommand(t, workerJoinCommand, []string{"worker"}, args, func(c *cli.Context) error {
		vc, _, closeAll, err := vlpLearnerConfig(c, spec)
		if err != nil {
			return err
		}
		defer closeAll()
		if vc.Task == nil {
			return errors.New("the worker's learner is no task learner")
		}
		v = taskViewOf(vc)
		v.Overlap = vc.Overlap
		return nil
	})
	return v, err
}

// Every fine-tuning flag reaches the same learner with --local and in a distributed run's worker,
// and a hand-written job spec with the same fields builds it too.
func TestTrainTaskFlags(t *testing.T) {
	f := newTaskFixture(t)
	cases := []struct {
		name    string
		flags   []string
		yaml    string
		check   func(v taskView) bool
		noLocal bool // a flag of the all-reduce: --local refuses it (TestTrainFlagsRefused)
	}{
		{"task", []string{"--task", "vqa"}, "task: vqa", func(v taskView) bool {
			// From the seed: the tiny preset on the synthetic world's vocabulary, tiny's
			// fine-tuning rate.
			return v.Task == train.TaskVQA && v.InitFrom == "" && v.Examples > 100 && v.Answers > 5 && near(v.Train.LR, 3e-4) &&
				near(v.Train.BackboneLR, 3e-4) && v.Model.DModel == model.Tiny().DModel && v.ImageSize == 64 && !v.Model.ChannelsLast
		}, false},
		{"init-from", []string{"--task", "vqa", "--init-from", f.store}, "task: vqa\ninit_from: " + f.store, func(v taskView) bool {
			return v.InitFrom == f.store+"#1" && v.Task == train.TaskVQA
		}, false},
		{"init-from-id", []string{"--task", "vqa", "--init-from", f.store + "#1"}, "task: vqa\ninit_from: " + f.store + "#1", func(v taskView) bool {
			return v.InitFrom == f.store+"#1"
		}, false},
		{"lr", []string{"--task", "vqa", "--lr", "1e-4", "--backbone-lr", "1e-5"}, "task: vqa\nhyper: {lr: 1.0e-4, backbone_lr: 1.0e-5, max_steps: 100}", func(v taskView) bool {
			return near(v.Train.LR, 1e-4) && near(v.Train.BackboneLR, 1e-5)
		}, false},
		{"image-size", []string{"--task", "vqa", "--image-size", "48"}, "task: vqa\noptions: {image_size: \"48\"}", func(v taskView) bool {
			return v.ImageSize == 48
		}, false},
		{"dropout", []string{"--task", "vqa", "--dropout", "0.05"}, "task: vqa\ndropout: 0.05", func(v taskView) bool {
			return v.Model.Dropout == 0.05
		}, false},
		// The task's own options.channels_last, not the pretraining job's (which has none).
		{"channels-last", []string{"--task", "vqa", "--init-from", f.store, "--channels-last"}, "task: vqa\ninit_from: " + f.store + "\noptions: {channels_last: \"true\"}", func(v taskView) bool {
			return v.Model.ChannelsLast && v.InitFrom == f.store+"#1"
		}, false},
		{"overlap", []string{"--task", "vqa", "--overlap=false"}, "task: vqa\noptions: {overlap: \"false\"}", func(v taskView) bool {
			return !v.Overlap
		}, true},
		{"batch-steps-seed", []string{"--task", "vqa", "--batch", "8", "--steps", "30", "--seed", "4"}, "task: vqa\nseed: 4\nglobal_batch: 8\nhyper: {max_steps: 30}", func(v taskView) bool {
			return v.Train.Seed == 4 && v.Train.Schedule.Total == 30
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append([]string{}, tc.flags...), "--data", f.records)
			dist, spec, err := distributedTaskView(t, args...)
			if err != nil {
				t.Fatalf("distributed %v: %v", args, err)
			}
			if !tc.check(dist) {
				t.Errorf("distributed %v: the worker's learner is %+v", args, dist)
			}
			if !tc.noLocal {
				local, err := localTaskView(t, args...)
				if err != nil {
					t.Fatalf("--local %v: %v", args, err)
				}
				if !tc.check(local) {
					t.Errorf("--local %v: the learner is %+v", args, local)
				}
				local.BucketSize, local.Overlap = dist.BucketSize, dist.Overlap
				local.PerUnit = dist.PerUnit // per worker: --batch over one process or two
				if !equalTaskViews(local, dist) {
					t.Errorf("%v: --local and a distributed worker differ:\n%+v\n%+v", args, local, dist)
				}
			}
			text := "name: train\nmodel: tiny\nglobal_batch: 16\nseed: 1\nhyper: {max_steps: 100}\n" +
				"dataset: {manifest: " + f.records + "}\nunits: {pairs: " + itoa(int(spec.Units.Pairs)) + ", per_unit: 8}\n"
			ys, err := coordinator.ParseJobSpecYAML([]byte(overlayYAML(t, text, tc.yaml)), "train")
			if err != nil {
				t.Fatal(err)
			}
			fromSpec, err := workerTaskView(t, ys, []string{"--torch-lib", shimPath(t), "worker", "join"})
			if err != nil {
				t.Fatalf("job spec %q: %v", tc.yaml, err)
			}
			if !tc.check(fromSpec) {
				t.Errorf("job spec %q: the worker's learner is %+v", tc.yaml, fromSpec)
			}
		})
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func equalTaskViews(a, b taskView) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// What a fine-tuning job cannot honour is refused in one line naming the flag or field.
func TestTrainTaskRefused(t *testing.T) {
	f := newTaskFixture(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--local", "--task", "gqa", "--data", f.records}, "--task gqa"},
		{[]string{"--local", "--init-from", f.store}, "--init-from does not apply"},
		{[]string{"--local", "--task", "vqa"}, "needs --data RECORDS"},
		{[]string{"--local", "--task", "vqa", "--data", f.records, "--images", "8"}, "--images does not apply"},
		{[]string{"--local", "--task", "vqa", "--data", f.records, "--itm-negatives", "0.2"}, "--itm-negatives does not apply"},
		{[]string{"--task", "vqa", "--data", f.records, "--eval", "8"}, "--eval does not apply"},
		{[]string{"--task", "vqa", "--data", f.records, "--vocab", f.records}, "--vocab does not apply"},
		{[]string{"--model", "linear", "--task", "vqa", "--data", f.records}, "--task does not apply to --model linear"},
		{[]string{"--local", "--task", "vqa", "--data", f.records, "--preset", "base", "--init-from", f.store}, "init_from"},
		// The distributed run reads the records and the init_from checkpoint as its workers will,
		// before any starts.
		{[]string{"--task", "vqa", "--data", f.records, "--preset", "base", "--init-from", f.store}, "init_from"},
		{[]string{"--task", "vqa", "--data", f.records, "--init-from", filepath.Join(t.TempDir(), "none.db")}, "init_from"},
	} {
		err := withCommand(t, trainCommand, nil, append([]string{"--torch-lib", shimPath(t), "train"}, tc.args...), func(c *cli.Context) error {
			if err := checkTrainFlags(c); err != nil {
				return err
			}
			if c.Bool("local") {
				_, err := newLocalTaskRun(c)
				return err
			}
			s, err := trainSpec(c, 2, t.TempDir())
			if err != nil {
				return err
			}
			return resolveTrainSpec(c, s)
		})
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: %v, want one line with %q", tc.args, err, tc.want)
		}
	}
	// Job-spec fields: an unknown task names the field; a linear job refuses task and init_from;
	// a pretraining job refuses init_from; pretraining's data options are refused on a task.
	base := coordinator.JobSpec{Name: "train", Model: "tiny", GlobalBatch: 8, Seed: 1, Dataset: coordinator.DatasetSpec{Manifest: f.records}}
	for _, tc := range []struct {
		edit func(*coordinator.JobSpec)
		want string
	}{
		{func(s *coordinator.JobSpec) { s.Task = "gqa" }, `task "gqa"`},
		{func(s *coordinator.JobSpec) { s.InitFrom = f.store }, "init_from"},
		{func(s *coordinator.JobSpec) {
			s.Task, s.Options = "vqa", map[string]string{train.OptITMNegatives: "0.1"}
		}, "option itm_negatives"},
		{func(s *coordinator.JobSpec) {
			s.Task, s.Options = "nlvr2", map[string]string{train.OptAnswerMinCount: "3"}
		}, "answer_min_count"},
		{func(s *coordinator.JobSpec) { s.Task, s.InitFrom = "vqa", f.store+"#x" }, "init_from"},
		{func(s *coordinator.JobSpec) { s.Task, s.Dataset = "vqa", coordinator.DatasetSpec{} }, "dataset.manifest"},
	} {
		s := base
		tc.edit(&s)
		if _, err := train.Resolve(s, 10); !errors.Is(err, worker.ErrJobSpec) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("spec %+v: %v, want an error naming %q", s, err, tc.want)
		}
	}
	for _, s := range []coordinator.JobSpec{{Model: "linear", Task: "vqa"}, {Model: "linear", InitFrom: f.store}} {
		if _, err := worker.ResolveLinearJob(s); !errors.Is(err, worker.ErrJobSpec) {
			t.Errorf("linear spec %+v: %v, want refused", s, err)
		}
	}
}

package train

import (
	"bytes"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/e2evlp/vlp/checkpoint"
	"github.com/e2evlp/vlp/coordinator"
	"github.com/e2evlp/vlp/data"
	"github.com/e2evlp/vlp/model"
	"github.com/e2evlp/vlp/synth"
	"github.com/e2evlp/vlp/torch"
	"github.com/e2evlp/vlp/worker"
	"github.com/e2evlp/vlp/worker/workertest"
)

// taskSetup is a small fine-tuning job's learner configuration: n examples of task's synthetic
// records, the tiny preset on the synthetic world's tokenizer, initialised from pretrained (nil:
// from the seed).
type taskSetup struct {
	cfg     Config
	records *TaskRecords
}

func newTaskSetup(t *testing.T, task Task, n int, perUnit uint32, seed uint64, pretrained *Pretrained) taskSetup {
	t.Helper()
	loadTorch(t)
	trainPath, _ := taskRecordsFiles(t, task, 3, 40, t.TempDir())
	recs, err := LoadTaskRecords(task, trainPath, 1)
	if err != nil {
		t.Fatal(err)
	}
	switch task {
	case TaskVQA:
		recs.VQA = recs.VQA[:n]
	case TaskNLVR2:
		recs.NLVR2 = recs.NLVR2[:n]
	default:
		recs.Captions = recs.Captions[:n]
	}
	world, err := data.NewSynthWorld(synth.Config{Seed: seed, Images: 16, Width: 64, Height: 64, MaxObjects: 2}, false)
	if err != nil {
		t.Fatal(err)
	}
	mc := model.Tiny()
	mc.VocabSize = max(mc.VocabSize, world.Tokenizer.Vocab().Size())
	mc.NumClasses = max(mc.NumClasses, len(synth.ClassNames))
	mc.NumAttributes = max(mc.NumAttributes, len(synth.AttributeNames))
	dc := data.DefaultConfig()
	dc.Image = data.SquareImageConfig(64)
	dc.MaxTextLen, dc.MaxCaptionLen = mc.MaxTextLen, mc.MaxCaptionLen
	tc := model.DefaultTrainConfig(10)
	tc.LR, tc.BackboneLR, tc.Seed, tc.ClipNorm = 3e-4, 3e-4, seed, 1
	return taskSetup{records: recs, cfg: Config{
		Model: mc, Train: tc, Device: torch.CPU, Data: dc, PerUnit: perUnit, Seed: seed, Threads: 1, Tokenizer: world.Tokenizer,
		Task: &TaskConfig{Task: task, Pretrained: pretrained,
			Examples: &TaskExamples{Records: recs, Tokenizer: world.Tokenizer, Data: dc, Seed: seed, PerUnit: perUnit}},
	}}
}

// factory builds learners of the setup, each with its own examples (a learner's source serves
// one caller), overlapping their all-reduce with backward as `vlp worker join` does.
func (ts taskSetup) factory(t *testing.T, onInit func(model.InitReport)) func() worker.Learner {
	return func() worker.Learner {
		cfg := ts.cfg
		tc := *cfg.Task
		e := tc.Examples
		tc.Examples = &TaskExamples{Records: e.Records, Tokenizer: e.Tokenizer, Data: e.Data, Seed: e.Seed, PerUnit: e.PerUnit}
		tc.OnInit = onInit
		cfg.Task, cfg.Overlap, cfg.BucketBytes = &tc, true, 256<<10
		l, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(l.Close)
		return l
	}
}

// pretrainedOf is a fresh pretraining learner's parameters, as a checkpoint would hold them.
func pretrainedOf(t *testing.T, seed uint64) *Pretrained {
	t.Helper()
	snap, err := vlpFactory(t, 2, seed)().Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	p := &Pretrained{Ref: "test#1", Layout: snap.Meta.Layout, Params: map[string]model.HostTensor{}}
	for _, x := range snap.Params {
		buf := make([]float32, x.NumElements())
		if err := x.Float32s(buf); err != nil {
			t.Fatal(err)
		}
		p.Params[x.Name] = model.HostTensor{Shape: x.Shape, Data: buf}
	}
	return p
}

// Each task fine-tunes through real workers (the coordinator, the NATS ring, leases, checkpoints)
// from a pretraining checkpoint's parameters: two workers stop at a checkpoint half way through
// the epoch, two new ones resume from it and finish; every example of the epoch is consumed by
// exactly one committed step over both runs, the resumed run starts at the next step, its ranks
// end bitwise-identical, and the head's parameters travel in the checkpoint.
func TestTaskWorkersResumeExactlyOnce(t *testing.T) {
	for _, task := range Tasks {
		t.Run(string(task), func(t *testing.T) {
			const n, perUnit, batch, half = 16, 2, 4, 2
			ts := newTaskSetup(t, task, n, perUnit, 5, pretrainedOf(t, 5))
			var mu sync.Mutex
			var reports []model.InitReport
			mk := ts.factory(t, func(r model.InitReport) {
				mu.Lock()
				defer mu.Unlock()
				reports = append(reports, r)
			})
			spec := workertest.Spec("tiny", n, perUnit, batch, 2)
			spec.Task, spec.CheckpointEvery = string(task), half
			j := workertest.Start(t, spec, coordinator.WithConfig(func(_ int, c *coordinator.Config) { c.LeaseTTL = 20 * time.Second }))
			ckpt := t.TempDir()
			run := func(names []string, maxSteps uint64) []*workertest.Node {
				var nodes []*workertest.Node
				for _, name := range names {
					nodes = append(nodes, j.WorkerWith(name, mk(), func(c *worker.Config) { c.MaxSteps, c.CheckpointDir = maxSteps, ckpt }))
				}
				workertest.Wait(t, 180*time.Second, nodes...)
				return nodes
			}
			first := run([]string{"a", "b"}, half)
			if first[0].Result.Step != half {
				t.Fatalf("the first run ended at step %d (%q), want %d", first[0].Result.Step, first[0].Result.Reason, half)
			}
			second := run([]string{"c", "d"}, 0)
			const steps = n / batch
			if got := second[0].Result.Step; got != steps {
				t.Fatalf("the resumed run ended at step %d (%q), want %d", got, second[0].Result.Reason, steps)
			}
			if j.Commit(half+1, "c").Step != half+1 || j.Commit(half, "c").Step != 0 {
				t.Fatalf("the resumed run did not start at step %d", half+1)
			}
			count := map[uint64]int{}
			for s := uint64(1); s <= steps; s++ {
				names := []string{"a", "b"}
				if s > half {
					names = []string{"c", "d"}
				}
				c0, c1 := j.Commit(s, names[0]), j.Commit(s, names[1])
				if c0.Step != s || c1.Step != s || c0.Losses[string(task)] <= 0 {
					t.Fatalf("step %d: commits %+v / %+v, want both workers' with a %s loss", s, c0, c1, task)
				}
				for _, r := range c0.Ranks {
					for _, sg := range r.Segments {
						for i := uint32(0); i < sg.Count; i++ {
							count[worker.PairID(worker.Pair{Epoch: sg.Epoch, Unit: sg.Unit, Offset: sg.Offset + i}, perUnit)]++
						}
					}
				}
			}
			for id := uint64(0); id < n; id++ {
				if count[id] != 1 {
					t.Errorf("example %d consumed %d times", id, count[id])
				}
			}
			if len(count) != n {
				t.Errorf("%d distinct examples consumed, want %d", len(count), n)
			}
			sc, sd := snapshotBytes(t, second[0].Learner), snapshotBytes(t, second[1].Learner)
			if !bytes.Equal(sc, sd) {
				t.Fatal("the resumed ranks hold different state")
			}
			snap, err := second[0].Learner.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			checkTaskInit(t, task, reports, snap)
		})
	}
}

// checkTaskInit: initialisation ran once (the first run's rank that initialised; the others
// received the state, the second run restored it) and reported exactly the head's parameters
// new; the snapshot holds them.
func checkTaskInit(t *testing.T, task Task, reports []model.InitReport, snap *checkpoint.Snapshot) {
	t.Helper()
	if len(reports) != 1 {
		t.Fatalf("initialised from the pretrained parameters %d times, want once", len(reports))
	}
	r := reports[0]
	prefix := map[Task]string{TaskVQA: model.VQAPrefix + ".", TaskNLVR2: model.NLVR2Prefix + "."}[task]
	for _, name := range r.New {
		if prefix == "" || !strings.HasPrefix(name, prefix) {
			t.Errorf("%s reported new; only the head's parameters (%q) are", name, prefix)
		}
	}
	if (prefix != "") != (len(r.New) > 0) || len(r.Loaded) == 0 || len(r.Unused) != 0 {
		t.Errorf("init report %s", r)
	}
	var inSnap []string
	for _, p := range snap.Params {
		if prefix != "" && strings.HasPrefix(p.Name, prefix) {
			inSnap = append(inSnap, p.Name)
		}
	}
	if !slices.Equal(inSnap, r.New) {
		t.Errorf("the checkpoint holds head parameters %v, want %v", inSnap, r.New)
	}
}

package train

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/e2evlp/vlp/data"
	"github.com/e2evlp/vlp/eval"
	"github.com/e2evlp/vlp/model"
	"github.com/e2evlp/vlp/sharding"
	"github.com/e2evlp/vlp/torch"
	"github.com/e2evlp/vlp/worker"
)

// The fine-tuning learning tests (#17, item 5), opt-in: VLP_FINETUNE_LEARN=1 (`make finetune-learn`
// runs them, after `make demo` when its checkpoint is missing). The tiny preset pretrained by
// `vlp train` on shards — VLP_FINETUNE_INIT_FROM=STORE[#ID], default make demo's
// out/demo/run/checkpoints/checkpoints.db — is fine-tuned on each synthetic task
// (VLP_FINETUNE_TASKS, default vqa,nlvr2; also caption, retrieval) through the workers' learner for
// VLP_FINETUNE_STEPS (default 2500 for VQA, 1500 for the others) steps of 32, once from the pretrained parameters and once from
// the seed, and scored on its held-out split:
//
//   - the fine-tuned model beats its text-only baseline — the same model shown another
//     question's (statement's) image(s), so that only the text can help — by a wide margin;
//   - fine-tuning from the pretrained parameters beats training from the seed at equal steps.
//
// The synthetic sets have 1,000 images (NLVR2: 9,600, 6,400 training statements: with 1,600 the
// head learns the training statements by heart; VLP_FINETUNE_IMAGES sets every task's);
// VLP_FINETUNE_SEED picks the seed of the data and the new heads (default 1), VLP_FINETUNE_LR the
// rate (default the tiny preset's, Task.DefaultLR). docs/BENCHMARKS.md, "Fine-tuning learning
// tests", has the figures measured.

// learnRecipe is task's synthetic images and fine-tuning steps (docs/finetune.md, "Learning
// tests"): NLVR2 learns its training statements by heart with fewer images, VQA's margin over the
// seed needs more steps.
func learnRecipe(task Task) (images, steps int) {
	switch task {
	case TaskVQA:
		return 1000, 2500
	case TaskNLVR2:
		return 9600, 1500
	default:
		return 1000, 1500
	}
}

// demoCheckpoint is make demo's pretraining store, from the package's directory.
const demoCheckpoint = "../out/demo/run/checkpoints/checkpoints.db"

// Margins the tests assert (accuracy points).
const (
	learnImageMargin    = 0.15 // fine-tuned with the true images over the same model with other images
	learnPretrainMargin = 0.05 // fine-tuned from the pretrained parameters over from the seed
)

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, v, err)
	}
	return n
}

func TestFinetuneLearns(t *testing.T) {
	if os.Getenv("VLP_FINETUNE_LEARN") == "" {
		t.Skip("opt-in (minutes on the CPU): VLP_FINETUNE_LEARN=1")
	}
	loadTorch(t)
	seed := uint64(envInt(t, "VLP_FINETUNE_SEED", 1))
	tasks := strings.Split(os.Getenv("VLP_FINETUNE_TASKS"), ",")
	if tasks[0] == "" {
		tasks = []string{"vqa", "nlvr2"}
	}
	ref := os.Getenv("VLP_FINETUNE_INIT_FROM")
	if ref == "" {
		if _, err := os.Stat(demoCheckpoint); err != nil {
			t.Fatalf("no pretraining checkpoint: %v; run make demo first (make finetune-learn does), or set VLP_FINETUNE_INIT_FROM=STORE[#ID]", err)
		}
		ref = demoCheckpoint
	}
	pre, tok, mc := pretrainedFromStore(t, ref)
	t.Logf("pretrained: %s, step %d", pre.Ref, pre.Step)
	for _, name := range tasks {
		task, err := ParseTask(name)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			images, steps := learnRecipe(task)
			images, steps = envInt(t, "VLP_FINETUNE_IMAGES", images), envInt(t, "VLP_FINETUNE_STEPS", steps)
			trainPath, heldPath := taskRecordsFiles(t, task, seed+100, images, dir)
			recs, err := LoadTaskRecords(task, trainPath, 0)
			if err != nil {
				t.Fatal(err)
			}
			held, err := LoadHeldOutRecords(task, heldPath, recs.Answers)
			if err != nil {
				t.Fatal(err)
			}
			var acc [2]float64
			var other float64
			for i, p := range []*Pretrained{pre, nil} {
				t0 := time.Now()
				l := finetune(t, task, recs, tok, mc, seed, steps, p)
				a, o := scoreTask(t, l, held, tok)
				acc[i] = a
				if i == 0 {
					other = o
				}
				t.Logf("%s from %s: held-out accuracy %.3f (other images %.3f) after %d steps, %v", name,
					map[bool]string{true: "pretrained", false: "the seed"}[p != nil], a, o, steps, time.Since(t0).Round(time.Second))
			}
			if acc[0]-other < learnImageMargin {
				t.Errorf("%s: %.3f with the true images, %.3f with other images: want a margin of %.2f", name, acc[0], other, learnImageMargin)
			}
			if acc[0]-acc[1] < learnPretrainMargin {
				t.Errorf("%s: %.3f fine-tuned from pretrained, %.3f from the seed: want a margin of %.2f", name, acc[0], acc[1], learnPretrainMargin)
			}
		})
	}
}

// pretrainedFromStore reads a pretraining checkpoint written by `vlp train` on shards (make
// demo's out/demo/run/checkpoints/checkpoints.db, say) as a fine-tuning job does: its parameters,
// and its job's tokenizer (options.vocab) and model (the manifest's classes and attributes).
func pretrainedFromStore(t *testing.T, ref string) (*Pretrained, *data.Tokenizer, model.Config) {
	t.Helper()
	pre, err := OpenPretrained(ref)
	if err != nil {
		t.Fatal(err)
	}
	v, err := data.LoadVocab(pre.Spec.Options[OptVocab])
	if err != nil {
		t.Fatalf("the checkpoint's job trained on shards with a vocab.txt: %v", err)
	}
	m, err := sharding.ReadManifest(filepath.Dir(pre.Spec.Dataset.Manifest))
	if err != nil {
		t.Fatal(err)
	}
	job, err := Resolve(pre.Spec, m.Pairs)
	if err != nil {
		t.Fatal(err)
	}
	job.FitData(v.Size(), m.Classes, m.Attributes)
	return pre, data.NewTokenizer(v), job.Model
}

// trainSteps steps l as one process does (`vlp train --local`): batch pairs a step, the epoch's
// units in order, the summed gradients divided by the rows.
func trainSteps(t *testing.T, l *Learner, n, batch, steps int) {
	t.Helper()
	grad := make([]float32, l.GradSize())
	per := uint64(l.cfg.PerUnit)
	next := uint64(0)
	for step := 1; step <= steps; step++ {
		pairs := make([]worker.Pair, batch)
		for i := range pairs {
			e, k := next/uint64(n), next%uint64(n)
			pairs[i] = worker.Pair{Epoch: e, Unit: uint32(k / per), Offset: uint32(k % per)}
			next++
		}
		losses, err := l.Gradients(t.Context(), pairs, grad)
		if err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		for i := range grad {
			grad[i] /= float32(batch)
		}
		if _, err := l.Apply(grad, uint64(step)); err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		if step%100 == 0 || step == 1 {
			t.Logf("step %d: loss %.4f", step, losses["total"]/float64(batch))
		}
	}
}

// finetune trains task on recs for steps steps of 32 at the tiny preset's fine-tuning rate, from
// pre (nil: the seed).
func finetune(t *testing.T, task Task, recs *TaskRecords, tok *data.Tokenizer, mc model.Config, seed uint64, steps int, pre *Pretrained) *Learner {
	t.Helper()
	const batch = 32
	dc := data.DefaultConfig()
	dc.Image = data.SquareImageConfig(64)
	dc.MaxTextLen, dc.MaxCaptionLen = mc.MaxTextLen, mc.MaxCaptionLen
	tc := model.DefaultTrainConfig(steps)
	tc.LR = task.DefaultLR("tiny")
	if v := os.Getenv("VLP_FINETUNE_LR"); v != "" {
		lr, err := strconv.ParseFloat(v, 64)
		if err != nil {
			t.Fatalf("VLP_FINETUNE_LR=%q: %v", v, err)
		}
		tc.LR = lr
	}
	tc.BackboneLR, tc.ClipNorm, tc.Seed = tc.LR, 1, seed
	tc.Schedule.Warmup = min(steps/10, 100)
	l, err := New(Config{Model: mc, Train: tc, Device: torch.CPU, Data: dc, PerUnit: batch, Seed: seed, Threads: 1, Tokenizer: tok,
		Task: &TaskConfig{Task: task, Pretrained: pre, Examples: &TaskExamples{Records: recs, Tokenizer: tok, Data: dc, Seed: seed, PerUnit: batch}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	if err := l.Init(seed); err != nil {
		t.Fatal(err)
	}
	trainSteps(t, l, recs.Len(), batch, steps)
	return l
}

// scoreTask is l's held-out accuracy on held, and the same model's with each example shown the
// image(s) of the example half the split away (another image: only the text can still help).
func scoreTask(t *testing.T, l *Learner, held *TaskRecords, tok *data.Tokenizer) (acc, other float64) {
	t.Helper()
	if held.Task == TaskRetrieval {
		return scoreRetrieval(t, l, held)
	}
	ex := &TaskExamples{Records: held, Tokenizer: tok, Data: l.cfg.Data, Seed: l.cfg.Seed, PerUnit: 1}
	n := held.Len()
	for _, shift := range []int{0, n / 2} {
		var sum float64
		byType := map[string][2]float64{}
		for lo := 0; lo < n; lo += 64 {
			hi := min(lo+64, n)
			s, err := scoreRows(l, ex, lo, hi, shift, byType)
			if err != nil {
				t.Fatal(err)
			}
			sum += s
		}
		if shift == 0 {
			acc = sum / float64(n)
		} else {
			other = sum / float64(n)
		}
		for _, k := range slices.Sorted(maps.Keys(byType)) {
			t.Logf("  %s (%d), %s: %.3f", k, int(byType[k][1]), map[bool]string{true: "its images", false: "other images"}[shift == 0], byType[k][0]/byType[k][1])
		}
	}
	return acc, other
}

// scoreRows sums the scores of examples lo…hi-1, each shown the image(s) of example
// (k+shift) mod n.
func scoreRows(l *Learner, ex *TaskExamples, lo, hi, shift int, byType map[string][2]float64) (float64, error) {
	r := ex.Records
	n := r.Len()
	var sum float64
	var err error
	switch r.Task {
	case TaskVQA:
		var texts, paths []string
		for k := lo; k < hi; k++ {
			texts, paths = append(texts, r.VQA[k].Question), append(paths, r.VQA[k].Image)
			paths[len(paths)-1] = r.VQA[(k+shift)%n].Image
		}
		pb, perr := ex.pairBatch(texts, paths)
		if perr != nil {
			return 0, perr
		}
		err = l.onPairs(pb, func(s *torch.Scope, in *model.Inputs) error {
			logits, _, err := l.head.(*model.VQAHead).Forward(s, l.e.m, in, nil, false, nil)
			if err != nil {
				return err
			}
			pred, err := model.VQAPredict(logits)
			if err != nil {
				return err
			}
			for i, c := range pred {
				a := eval.VQAAccuracy(r.Answers.Answers[c], r.VQA[lo+i].HumanAnswers())
				sum += a
				if byType != nil {
					k := r.VQA[lo+i].QuestionType
					byType[k] = [2]float64{byType[k][0] + a, byType[k][1] + 1}
				}
			}
			return nil
		})
	case TaskCaption:
		// Teacher-forced caption tokens predicted right (the scored unit is a token: the sum
		// is over the rows' token accuracies, one per row).
		shifted := &TaskRecords{Task: TaskCaption}
		for k := lo; k < hi; k++ {
			c := r.Captions[k]
			c.Image = r.Captions[(k+shift)%n].Image
			shifted.Captions = append(shifted.Captions, c)
		}
		sx := &TaskExamples{Records: shifted, Tokenizer: ex.Tokenizer, Data: ex.Data}
		pos := make([]int, hi-lo)
		for i := range pos {
			pos[i] = i
		}
		b, berr := sx.captionBatch(pos, 0)
		if berr != nil {
			return 0, berr
		}
		l.do(func() {
			s := torch.NewScope()
			defer s.Close()
			var in *model.Inputs
			if in, err = model.BatchToTensors(s, b, l.cfg.Device); err != nil {
				return
			}
			var logits *torch.Tensor
			if logits, _, err = l.e.m.CaptionForward(s, in, false, nil); err != nil { // [B,T-1,V]
				return
			}
			var pred []int64
			if pred, err = logits.Detach().Argmax(2, false).Int64s(); err != nil { // [B,T-1]
				return
			}
			T := b.CapLen
			for i := 0; i < b.Size; i++ {
				right, all := 0, 0
				for j := 1; j < T; j++ {
					if b.CaptionMask[i*T+j] {
						continue
					}
					all++
					if pred[i*(T-1)+j-1] == b.CaptionIDs[i*T+j] {
						right++
					}
				}
				sum += float64(right) / float64(max(all, 1))
			}
		})
	case TaskNLVR2:
		shifted := &TaskRecords{Task: TaskNLVR2}
		for k := lo; k < hi; k++ {
			e := r.NLVR2[k]
			o := r.NLVR2[(k+shift)%n]
			e.Left, e.Right = o.Left, o.Right
			shifted.NLVR2 = append(shifted.NLVR2, e)
		}
		sx := &TaskExamples{Records: shifted, Tokenizer: ex.Tokenizer, Data: ex.Data}
		pos := make([]int, hi-lo)
		for i := range pos {
			pos[i] = i
		}
		nb, berr := sx.nlvr2Batch(pos)
		if berr != nil {
			return 0, berr
		}
		l.do(func() {
			s := torch.NewScope()
			defer s.Close()
			var in *model.NLVR2Inputs
			if in, err = model.NLVR2ToTensors(s, nb, l.cfg.Device); err != nil {
				return
			}
			var logits *torch.Tensor
			if logits, _, err = l.head.(*model.NLVR2Head).Forward(s, l.e.m, in, false, nil); err != nil {
				return
			}
			var pred []int64
			if pred, err = logits.Detach().Argmax(1, false).Int64s(); err != nil {
				return
			}
			for i, p := range pred {
				if p == nb.Labels[i] {
					sum++
				}
			}
		})
	}
	return sum, err
}

// scoreRetrieval is R@1 (image→text and text→image, averaged) over the first 64 held-out images
// and all their sentences, and its text-only baseline: chance, 1/N (text alone cannot rank images).
func scoreRetrieval(t *testing.T, l *Learner, held *TaskRecords) (acc, other float64) {
	t.Helper()
	p, err := l.Predict(held, 1, RetrievalImages(64))
	if err != nil {
		t.Fatal(err)
	}
	r, err := eval.RankRetrievalTexts(p.Scores, p.TextImage)
	if err != nil {
		t.Fatal(err)
	}
	return (r.ImageToText[0] + r.TextToImage[0]) / 2, 1 / float64(r.N)
}

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/e2evlp/vlp/checkpoint"
	"github.com/e2evlp/vlp/coordinator"
	"github.com/e2evlp/vlp/eval"
	"github.com/e2evlp/vlp/torch"
	"github.com/e2evlp/vlp/train"
	"github.com/urfave/cli/v2"
)

// finetuneCommand groups what follows a fine-tuning job (`vlp train --task T`): the evaluation
// of its checkpoints on held-out records with the task's metric (package eval).
var finetuneCommand = &cli.Command{
	Name:  "finetune",
	Usage: "fine-tuning jobs: evaluate a fine-tuned checkpoint (training is vlp train --task)",
	Subcommands: []*cli.Command{{
		Name:  "eval",
		Usage: "score a fine-tuned checkpoint on held-out records with its task's metric",
		Description: "Rebuilds the fine-tuning job's model from the job spec its checkpoint records (the\n" +
			"pretraining checkpoint it started from, its training records for the VQA answer\n" +
			"vocabulary), restores the checkpoint and scores --data, records of `vlp downstream import\n" +
			"--records`: VQA accuracy (official, by answer type), NLVR2 accuracy and consistency,\n" +
			"BLEU-4 and CIDEr-D of beam-search captions on the Karpathy test images, retrieval R@1/5/10\n" +
			"both ways over the Karpathy test images against all their sentences (UNITER's and E2E-VLP's\n" +
			"1K / 5K protocol: an image finds any of its sentences, a sentence its image). Retrieval costs\n" +
			"one pass of the fusion encoder per image–sentence pair: --retrieval-images bounds the images,\n" +
			"and progress goes to stderr every few seconds.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "checkpoint", Required: true, Usage: "checkpoint store of the fine-tuning job, optionally #ID (default: its latest that verifies)"},
			&cli.StringFlag{Name: "data", Required: true, Usage: "held-out records (vlp downstream import --records): a VQA or NLVR2 split, or the Karpathy file (its test images)"},
			&cli.IntFlag{Name: "beams", Value: 3, Usage: "captioning: beam width"},
			&cli.IntFlag{Name: "retrieval-images", Usage: "retrieval: rank the first `N` test images (in record order) against all their sentences; 0: the whole test split. " +
				"Costs N×M forward passes of the fusion encoder, M the N images' sentences (1K images of 5 sentences: 5 million; COCO's 5K: 125 million)"},
			&cli.StringFlag{Name: "device", Value: "cpu", Usage: "cpu or cuda:N"},
			&cli.IntFlag{Name: "threads", Usage: threadsUsage},
		},
		Action: finetuneEval,
	}},
}

// retrievalProgressEvery spaces the progress lines of a retrieval ranking, which can run for
// hours (COCO's 5K test images: 125 million pairs).
const retrievalProgressEvery = 5 * time.Second

func finetuneEval(c *cli.Context) error {
	if n := c.Int("retrieval-images"); n < 0 {
		return fmt.Errorf("finetune eval: --retrieval-images %d, want >= 0 (0: the whole test split)", n)
	}
	dev, err := loadTorch(c, c.String("device"))
	if err != nil {
		return fmt.Errorf("finetune eval: %w", err)
	}
	if n := c.Int("threads"); n > 0 {
		torch.NumThreads(n)
	}
	store, id, err := train.ParseCheckpointRef(c.String("checkpoint"))
	if err != nil {
		return fmt.Errorf("finetune eval: %w", err)
	}
	info, snap, _, err := checkpoint.Read(store, id)
	if err != nil {
		return fmt.Errorf("finetune eval: %w", err)
	}
	var spec coordinator.JobSpec
	if err := json.Unmarshal(info.Meta.JobSpec, &spec); err != nil {
		return fmt.Errorf("finetune eval: checkpoint %d: job spec: %w", info.ID, err)
	}
	task, err := train.ParseTask(spec.Task)
	if err != nil || !task.FineTuning() {
		return fmt.Errorf("finetune eval: checkpoint %d in %s is of a pretraining job: vlp eval scores those", info.ID, store)
	}
	cfg, err := taskLearnerConfig(spec, "", dev, c.Int("threads"))
	if err != nil {
		return fmt.Errorf("finetune eval: %w", err)
	}
	cfg.Overlap, cfg.Task.Pretrained = false, nil // the checkpoint holds every parameter
	l, err := train.New(cfg)
	if err != nil {
		return err
	}
	defer l.Close()
	if err := l.Restore(snap); err != nil {
		return fmt.Errorf("finetune eval: checkpoint %d: %w", info.ID, err)
	}
	held, err := train.LoadHeldOutRecords(task, c.String("data"), cfg.Task.Examples.Records.Answers)
	if err != nil {
		return fmt.Errorf("finetune eval: %w", err)
	}
	p, err := l.Predict(held, c.Int("beams"), train.RetrievalImages(c.Int("retrieval-images")),
		train.RetrievalProgress(retrievalProgress(c.App.ErrWriter, retrievalProgressEvery, time.Now)))
	if err != nil {
		return err
	}
	w := c.App.Writer
	fmt.Fprintf(w, "checkpoint %s#%d (step %d), task %s, %d held-out examples\n", store, info.ID, info.Step(), task, held.Len())
	switch task {
	case train.TaskVQA:
		humans, types := make([][]string, held.Len()), make([]string, held.Len())
		for i, q := range held.VQA {
			humans[i], types[i] = q.HumanAnswers(), q.AnswerType
		}
		r, err := eval.ScoreVQA(p.Answers, humans, types)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "VQA accuracy %.4f over %d questions; by answer type:", r.Accuracy, r.Questions)
		for _, k := range sortedKeys(r.ByAnswerType) {
			fmt.Fprintf(w, " %s %.4f (%d)", k, r.ByAnswerType[k], r.TypeCounts[k])
		}
		fmt.Fprintln(w)
	case train.TaskNLVR2:
		ids, labels := make([]string, held.Len()), make([]bool, held.Len())
		for i, e := range held.NLVR2 {
			ids[i], labels[i] = e.Identifier, e.Label
		}
		r, err := eval.ScoreNLVR2(ids, p.True, labels)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "NLVR2 accuracy %.4f, consistency %.4f (%d examples, %d sentences)\n", r.Accuracy, r.Consistency, r.Examples, r.Sentences)
	case train.TaskCaption:
		hyps, refs := make([][]string, len(p.Images)), make([][][]string, len(p.Images))
		for i, im := range p.Images {
			hyps[i] = eval.CaptionTokens(p.Captions[i])
			for _, s := range im.Sentences {
				refs[i] = append(refs[i], eval.CaptionTokens(s))
			}
		}
		bleu, err := eval.CorpusBLEU(hyps, refs)
		if err != nil {
			return err
		}
		cider, _, err := eval.CIDErD(hyps, refs)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "captioning on %d test images (beam %d): BLEU-4 %.4f, CIDEr-D %.4f\n", len(p.Images), c.Int("beams"), bleu[3], cider)
		for i := range min(3, len(p.Images)) {
			fmt.Fprintf(w, "  %q (truth: %q)\n", p.Captions[i], p.Images[i].Sentences[0])
		}
	case train.TaskRetrieval:
		r, err := eval.RankRetrievalTexts(p.Scores, p.TextImage)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "retrieval over %d test images and their %d sentences: image→text R@1/5/10 %.3f %.3f %.3f, text→image %.3f %.3f %.3f\n",
			r.N, r.Texts, r.ImageToText[0], r.ImageToText[1], r.ImageToText[2], r.TextToImage[0], r.TextToImage[1], r.TextToImage[2])
	}
	return nil
}

// retrievalProgress is a train.RetrievalProgress callback that writes to w how many of the
// ranking's pairs are scored and about how long the rest will take, at most once every `every`
// (now is the clock): a ranking that ends sooner prints nothing, and the last pass prints
// nothing since the report follows.
func retrievalProgress(w io.Writer, every time.Duration, now func() time.Time) func(done, total int) {
	start := now()
	last := start
	return func(done, total int) {
		t := now()
		if done >= total || t.Sub(last) < every {
			return
		}
		last = t
		took := t.Sub(start)
		left := time.Duration(float64(took) * float64(total-done) / float64(done))
		fmt.Fprintf(w, "retrieval: %d of %d image–sentence pairs scored (%.1f%%) in %s, about %s left\n",
			done, total, 100*float64(done)/float64(total), took.Round(time.Second), left.Round(time.Second))
	}
}

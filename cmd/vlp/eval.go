package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/e2evlp/vlp/checkpoint"
	"github.com/e2evlp/vlp/coordinator"
	"github.com/e2evlp/vlp/data"
	"github.com/e2evlp/vlp/eval"
	"github.com/e2evlp/vlp/model"
	"github.com/e2evlp/vlp/synth"
	"github.com/e2evlp/vlp/torch"
	"github.com/e2evlp/vlp/train"
	"github.com/e2evlp/vlp/worker"
	"github.com/urfave/cli/v2"
)

const catEval = "EVALUATION"

// evalCommand evaluates a checkpoint of an E2E-VLP job on held-out data
// (package eval): a table on stdout, and in --out a JSON report,
// TensorBoard scalars and the predictions in COCO / coco-caption formats.
var evalCommand = &cli.Command{
	Name:  "eval",
	Usage: "evaluate a checkpoint on held-out data: MLM, ITM, COCO AP/AR, attributes, BLEU, CIDEr-D, retrieval",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "checkpoint", Required: true, Usage: "checkpoint store file, optionally #ID (default: the latest checkpoint that verifies)", EnvVars: []string{"VLP_EVAL_CHECKPOINT"}, Category: catEval},
		&cli.StringFlag{Name: "data", Value: "synth", Usage: "held-out data: synth (a fresh synthetic world, seeded apart from the job's) or a shard directory (manifest.json + shards)", EnvVars: []string{"VLP_EVAL_DATA"}, Category: catEval},
		&cli.IntFlag{Name: "images", Value: 128, Usage: "held-out images (with shards: the first N; 0: all of them)", Category: catEval},
		&cli.IntFlag{Name: "retrieval", Value: 32, Usage: "images ranked against each other's texts for retrieval R@K: N² forward passes (0: none)", Category: catEval},
		&cli.IntFlag{Name: "beams", Value: 3, Usage: "beam width of the beam-search captions (1: greedy captions only)", Category: catEval},
		&cli.IntFlag{Name: "batch", Value: 16, Usage: "rows per forward pass", Category: catEval},
		&cli.IntFlag{Name: "samples", Value: 4, Usage: "generated captions printed next to the truth", Category: catEval},
		&cli.StringFlag{Name: "out", Value: "vlp-eval", Usage: "directory for report.json, the COCO files, captions, events/ and boxes.png", Category: catEval},
		&cli.StringFlag{Name: "train-data", Usage: "the job's training shard directory, for its class vocabularies (default: the directory of the job spec's manifest)", Category: catEval},
		&cli.StringFlag{Name: "vocab", Usage: "the job's vocab.txt (default: the job spec's path)", Category: catEval},
		&cli.StringFlag{Name: "device", Value: "cpu", Usage: "cpu or cuda:N", EnvVars: []string{"VLP_DEVICE"}, Category: catEval},
		&cli.IntFlag{Name: "threads", Usage: threadsUsage, Category: catEval},
	},
	Action: runEval,
}

func runEval(c *cli.Context) error {
	for _, f := range []string{"images", "retrieval", "batch", "samples", "threads"} {
		if c.Int(f) < 0 {
			return fmt.Errorf("eval: --%s %d: want >= 0", f, c.Int(f))
		}
	}
	if c.Int("beams") < 1 {
		return fmt.Errorf("eval: --beams %d: want >= 1", c.Int("beams"))
	}
	if c.Int("batch") < 1 {
		return fmt.Errorf("eval: --batch %d: want >= 1", c.Int("batch"))
	}
	if c.String("data") == "synth" && c.Int("images") < 1 {
		return fmt.Errorf("eval: --images %d: the synthetic world needs at least 1", c.Int("images"))
	}
	store, id, hasID, err := parseCheckpointRef(c.String("checkpoint"))
	if err != nil {
		return err
	}
	// LibTorch's thread count is per OS thread: the model is built and run on this one.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	em, err := loadEvalModel(c, store, id, hasID, c.String("train-data"), c.String("vocab"))
	if err != nil {
		return err
	}
	defer em.model.Close()
	set, err := heldOutSet(c.String("data"), c.Int("images"), em)
	if err != nil {
		return err
	}
	if n := c.Int("retrieval"); n > len(set.Examples) {
		return fmt.Errorf("eval: --retrieval %d: the held-out set has %d images", n, len(set.Examples))
	}
	out := c.String("out")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("eval: --out: %w", err)
	}
	rep, err := eval.Evaluate(em.model, set, eval.Config{
		Tokenizer: em.tok, ImageSize: em.imageSize, Batch: c.Int("batch"), Beams: c.Int("beams"),
		Retrieval: c.Int("retrieval"), Samples: c.Int("samples"), BoxesPNG: filepath.Join(out, "boxes.png"),
	})
	if err != nil {
		return err
	}
	rep.Checkpoint = em.ref
	if err := eval.WriteTable(c.App.Writer, rep); err != nil {
		return err
	}
	files, err := writeEvalFiles(out, rep)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "wrote %s\n", strings.Join(files, ", "))
	return nil
}

// heldOutSet is the held-out data of --data for em's job: synth, a fresh
// synthetic world of images images; else the first images (0: all) of the
// shards in that directory.
func heldOutSet(where string, images int, em *evalModel) (*eval.Set, error) {
	if where == "synth" {
		return eval.SynthSet(em.spec.Seed, images, em.imageSize, em.classes, em.attrs)
	}
	return eval.ShardSet(where, images, em.classes, em.attrs)
}

// parseCheckpointRef splits STORE[#ID].
func parseCheckpointRef(s string) (store string, id uint64, hasID bool, err error) {
	i := strings.LastIndex(s, "#")
	if i < 0 {
		return s, 0, false, nil
	}
	id, err = strconv.ParseUint(s[i+1:], 10, 64)
	if err != nil || id == 0 {
		return "", 0, false, fmt.Errorf("eval: --checkpoint %q: after # comes a checkpoint id (see vlp checkpoint ls)", s)
	}
	return s[:i], id, true, nil
}

// writeEvalFiles writes the report, the TensorBoard scalars (at the
// checkpoint's step) and the predictions in COCO formats into dir.
func writeEvalFiles(dir string, rep *eval.Report) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("eval: %w", err)
	}
	p := &rep.Predictions
	files := []struct {
		name  string
		write func(string) error
	}{
		{"report.json", func(path string) error { return eval.WriteReport(path, rep) }},
		{"instances_gt.json", func(path string) error { return eval.WriteCOCOGroundTruth(path, p) }},
		{"detections.json", func(path string) error { return eval.WriteCOCODetections(path, p) }},
		{"captions_greedy.json", func(path string) error { return eval.WriteCaptions(path, p, p.Greedy) }},
	}
	if rep.Beam != nil {
		files = append(files, struct {
			name  string
			write func(string) error
		}{"captions_beam.json", func(path string) error { return eval.WriteCaptions(path, p, p.Beam) }})
	}
	var wrote []string
	for _, f := range files {
		path := filepath.Join(dir, f.name)
		if err := f.write(path); err != nil {
			return nil, err
		}
		wrote = append(wrote, path)
	}
	host, _ := os.Hostname()
	ew, err := worker.NewEventWriter(filepath.Join(dir, "events"), "eval."+host)
	if err != nil {
		return nil, err
	}
	ew.Write(rep.Checkpoint.Step, rep.Scalars())
	if err := ew.Close(); err != nil {
		return nil, fmt.Errorf("eval: events: %w", err)
	}
	return append(wrote, filepath.Join(dir, "events")), nil
}

// evalModel is a checkpoint restored into a model built as its job's
// workers built theirs, with what interprets the model's outputs.
type evalModel struct {
	model          *model.Model
	spec           coordinator.JobSpec
	ref            eval.CheckpointRef
	tok            *data.Tokenizer
	classes, attrs []string
	imageSize      int
}

// loadEvalModel reads checkpoint id of the store (it must verify; without
// an id, the latest that verifies), rebuilds its job's model from the job
// spec it carries — the preset, the tokenizer (the synthetic world's, or
// the spec's vocab.txt, or vocab) and the classes (synth's, or the
// training manifest's, found in trainData or where the spec says) — and
// restores its parameters, on --device.
func loadEvalModel(c *cli.Context, store string, id uint64, hasID bool, trainData, vocab string) (*evalModel, error) {
	dev, err := loadTorch(c, c.String("device"))
	if err != nil {
		return nil, fmt.Errorf("eval: %w", err)
	}
	if n := c.Int("threads"); n > 0 {
		torch.NumThreads(n)
	}
	if hasID && id == 0 {
		return nil, fmt.Errorf("eval: %s#0: checkpoint ids start at 1 (vlp checkpoint ls)", store)
	}
	info, snap, skipped, err := checkpoint.Read(store, id)
	for _, skip := range skipped {
		fmt.Fprintf(c.App.ErrWriter, "vlp: skipped a checkpoint that fails verification: %v\n", skip)
	}
	if err != nil {
		return nil, fmt.Errorf("eval: %w", err)
	}
	var spec coordinator.JobSpec
	if len(info.Meta.JobSpec) == 0 {
		return nil, fmt.Errorf("eval: checkpoint %d in %s records no job spec: its model cannot be rebuilt", info.ID, store)
	}
	if err := json.Unmarshal(info.Meta.JobSpec, &spec); err != nil {
		return nil, fmt.Errorf("eval: checkpoint %d in %s: job spec: %w", info.ID, store, err)
	}
	if spec.Model == "linear" {
		return nil, fmt.Errorf("eval: checkpoint %d in %s is of a linear job; only E2E-VLP presets are evaluated", info.ID, store)
	}
	em := &evalModel{spec: spec, ref: eval.CheckpointRef{Store: store, ID: info.ID, Step: info.Step()}}
	if em.tok, em.classes, em.attrs, err = jobVocabularies(spec, trainData, vocab); err != nil {
		return nil, fmt.Errorf("eval: checkpoint %d: %w", info.ID, err)
	}
	job, err := train.Resolve(spec, spec.Units.Pairs)
	if err != nil {
		return nil, fmt.Errorf("eval: %w", err)
	}
	job.FitData(em.tok.Vocab().Size(), em.classes, em.attrs)
	em.imageSize = job.Options.ImageSize
	if em.model, err = model.New(job.Model, spec.Seed, dev); err != nil {
		return nil, err
	}
	if err := eval.RestoreParams(em.model, snap); err != nil {
		em.model.Close()
		return nil, fmt.Errorf("eval: checkpoint %d in %s: %w", info.ID, store, err)
	}
	return em, nil
}

// jobVocabularies are the tokenizer and the class and attribute names a
// job trained with: the synthetic world's, or its vocab.txt and training
// manifest (trainData and vocab override where the spec says they are;
// both files must match the spec's checksums).
func jobVocabularies(spec coordinator.JobSpec, trainData, vocab string) (*data.Tokenizer, []string, []string, error) {
	if spec.Dataset.Manifest == "" {
		for f, v := range map[string]string{"train-data": trainData, "vocab": vocab} {
			if v != "" {
				return nil, nil, nil, fmt.Errorf("--%s: the job trained on the synthetic world, which has its own vocabulary", f)
			}
		}
		w, _, err := synthWorld(spec)
		if err != nil {
			return nil, nil, nil, err
		}
		return w.Tokenizer, synth.ClassNames, synth.AttributeNames, nil
	}
	js, err := openJobShards(spec, trainData, vocab)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("the job's data (--train-data, --vocab): %w", err)
	}
	return js.tokenizer, js.manifest.Classes, js.manifest.Attributes, nil
}

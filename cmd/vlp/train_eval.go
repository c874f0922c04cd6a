package main

import (
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"runtime"

	"github.com/e2evlp/vlp/coordinator"
	"github.com/e2evlp/vlp/eval"
	"github.com/urfave/cli/v2"
)

// trainEvalRetrieval bounds the images of the end-of-run retrieval ranking
// (N² forward passes).
const trainEvalRetrieval = 16

// runTrainEval evaluates the run's latest verified checkpoint (package
// eval, as `vlp eval` does) on that many held-out synthetic images, indexed
// like the job's data; it writes boxes.png and, in dir/eval, the report
// and the COCO files.
func runTrainEval(c *cli.Context, spec coordinator.JobSpec, dir string, images int, _ *slog.Logger) (*eval.Report, error) {
	trainData := c.String("data")
	if trainData == "synth" {
		trainData = ""
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	em, err := loadEvalModel(c, filepath.Join(dir, "checkpoints", "checkpoints.db"), 0, false, trainData, c.String("vocab"))
	if err != nil {
		return nil, err
	}
	defer em.model.Close()
	set, err := eval.SynthSet(spec.Seed, images, em.imageSize, em.classes, em.attrs)
	if err != nil {
		return nil, err
	}
	rep, err := eval.Evaluate(em.model, set, eval.Config{
		Tokenizer: em.tok, ImageSize: em.imageSize, Beams: 1, Samples: 4,
		Retrieval: min(trainEvalRetrieval, len(set.Examples)), BoxesPNG: filepath.Join(dir, "boxes.png"),
	})
	if err != nil {
		return nil, err
	}
	rep.Checkpoint = em.ref
	if _, err := writeEvalFiles(filepath.Join(dir, "eval"), rep); err != nil {
		return nil, err
	}
	return rep, nil
}

// printEval prints the end-of-run evaluation.
func printEval(w io.Writer, r *eval.Report) {
	if err := eval.WriteTable(w, r); err != nil {
		fmt.Fprintf(w, "evaluation: %v\n", err)
	}
}

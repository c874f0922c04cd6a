package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/e2evlp/vlp/downstream"
	"github.com/e2evlp/vlp/synth"
	"github.com/urfave/cli/v2"
)

// downstreamTasks are the fine-tuning datasets `vlp downstream` knows.
var downstreamTasks = []string{"vqa", "nlvr2", "karpathy"}

var downstreamCommand = &cli.Command{
	Name:  "downstream",
	Usage: "write and read the fine-tuning datasets (VQA v2, NLVR2, Karpathy-split captions)",
	Subcommands: []*cli.Command{{
		Name:  "synth",
		Usage: "write the synthetic shapes world in the fine-tuning datasets' formats",
		Description: "--task vqa writes OUT/vqa (v2_OpenEnded_mscoco_{train,val}2014_questions.json,\n" +
			"v2_mscoco_{train,val}2014_annotations.json, {train,val}2014/*.jpg); --task nlvr2 writes\n" +
			"OUT/nlvr2 (train.json, dev.json, test1.json, images/…/*.png); --task karpathy writes\n" +
			"OUT/karpathy (dataset_coco.json, train2014/, val2014/); --task all writes the three.\n" +
			"The last --held-out of the images (NLVR2: of the eight-image sets) are the evaluation splits.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "task", Usage: "vqa, nlvr2, karpathy or all", Value: "all", EnvVars: []string{"VLP_DOWNSTREAM_TASK"}},
			&cli.StringFlag{Name: "out", Usage: "output directory", Required: true, EnvVars: []string{"VLP_DOWNSTREAM_OUT"}},
			&cli.IntFlag{Name: "images", Usage: "images in the world (NLVR2 uses the largest multiple of 8)", Value: 1000, EnvVars: []string{"VLP_DOWNSTREAM_IMAGES"}},
			&cli.Uint64Flag{Name: "seed", Usage: "world seed", Value: 1, EnvVars: []string{"VLP_DOWNSTREAM_SEED"}},
			&cli.IntFlag{Name: "width", Usage: "image width in pixels", Value: 96, EnvVars: []string{"VLP_DOWNSTREAM_WIDTH"}},
			&cli.IntFlag{Name: "height", Usage: "image height in pixels", Value: 96, EnvVars: []string{"VLP_DOWNSTREAM_HEIGHT"}},
			&cli.IntFlag{Name: "max-objects", Usage: "most shapes per image, 1–4", Value: 4, EnvVars: []string{"VLP_DOWNSTREAM_MAX_OBJECTS"}},
			&cli.Float64Flag{Name: "held-out", Usage: "fraction held out of training (0: 0.2)", EnvVars: []string{"VLP_DOWNSTREAM_HELD_OUT"}},
			&cli.IntFlag{Name: "questions", Usage: "VQA questions per image (0: 5, one of each kind)", EnvVars: []string{"VLP_DOWNSTREAM_QUESTIONS"}},
			&cli.Float64Flag{Name: "noise", Usage: "chance a synthetic VQA annotator answers wrong (0: 0.2; negative: none)", EnvVars: []string{"VLP_DOWNSTREAM_NOISE"}},
			&cli.IntFlag{Name: "workers", Usage: "rendering goroutines", Value: 4, EnvVars: []string{"VLP_DOWNSTREAM_WORKERS"}},
		},
		Action: downstreamSynth,
	}, {
		Name:  "import",
		Usage: "read a fine-tuning dataset's files, check them and its images, and report what is usable",
		Description: "--task vqa reads --questions and --annotations (optional: a test split has none);\n" +
			"--task nlvr2 and --task karpathy read --file. --images is the image directory (unchecked\n" +
			"when empty). Prints what was read, kept and skipped and why; --records writes the kept\n" +
			"records as JSON, --answers the VQA answer vocabulary (answers given as\n" +
			"multiple_choice_answer at least --min-count times).",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "task", Usage: "vqa, nlvr2 or karpathy", Required: true, EnvVars: []string{"VLP_DOWNSTREAM_TASK"}},
			&cli.StringFlag{Name: "questions", Usage: "VQA questions file", EnvVars: []string{"VLP_DOWNSTREAM_QUESTIONS_FILE"}},
			&cli.StringFlag{Name: "annotations", Usage: "VQA annotations file", EnvVars: []string{"VLP_DOWNSTREAM_ANNOTATIONS"}},
			&cli.StringFlag{Name: "file", Usage: "NLVR2 JSON-lines file or Karpathy-split file", EnvVars: []string{"VLP_DOWNSTREAM_FILE"}},
			&cli.StringFlag{Name: "images", Usage: "image directory (empty: images not checked)", EnvVars: []string{"VLP_DOWNSTREAM_IMAGES_DIR"}},
			&cli.StringFlag{Name: "records", Usage: "write the kept records as JSON to this file", EnvVars: []string{"VLP_DOWNSTREAM_RECORDS"}},
			&cli.StringFlag{Name: "answers", Usage: "write the VQA answer vocabulary as JSON to this file", EnvVars: []string{"VLP_DOWNSTREAM_ANSWERS"}},
			&cli.IntFlag{Name: "min-count", Usage: "answer vocabulary: least multiple_choice_answer count", Value: 9, EnvVars: []string{"VLP_DOWNSTREAM_MIN_COUNT"}},
		},
		Action: downstreamImport,
	}},
}

func downstreamSynth(c *cli.Context) error {
	cfg := synth.FinetuneConfig{
		World: synth.Config{
			Seed: c.Uint64("seed"), Images: c.Int("images"),
			Width: c.Int("width"), Height: c.Int("height"), MaxObjects: c.Int("max-objects"),
		},
		HeldOut:   c.Float64("held-out"),
		Questions: c.Int("questions"),
		Noise:     c.Float64("noise"),
		Workers:   c.Int("workers"),
	}
	tasks := downstreamTasks
	if t := c.String("task"); t != "all" {
		tasks = []string{t}
	}
	out := c.String("out")
	w := c.App.Writer
	for _, task := range tasks {
		dir := filepath.Join(out, task)
		switch task {
		case "vqa":
			st, err := synth.ExportVQA(cfg, dir)
			if err != nil {
				return fmt.Errorf("downstream synth: vqa: %w", err)
			}
			fmt.Fprintf(w, "wrote %s: train2014 %d images, %d questions; val2014 %d images, %d questions; %d majority answers wrong\n",
				dir, st.Images[synth.VQATrain], st.Questions[synth.VQATrain], st.Images[synth.VQAVal], st.Questions[synth.VQAVal], st.WrongMajority)
		case "nlvr2":
			st, err := synth.ExportNLVR2(cfg, dir)
			if err != nil {
				return fmt.Errorf("downstream synth: nlvr2: %w", err)
			}
			for _, s := range synth.NLVR2Splits {
				fmt.Fprintf(w, "wrote %s/%s.json: %d sets, %d examples, %d true\n", dir, s, st.Sets[s], st.Examples[s], st.True[s])
			}
		case "karpathy":
			st, err := synth.ExportKarpathy(cfg, dir)
			if err != nil {
				return fmt.Errorf("downstream synth: karpathy: %w", err)
			}
			fmt.Fprintf(w, "wrote %s/%s: train %d, restval %d, val %d, test %d images; %d sentences\n", dir, synth.KarpathyFile,
				st.Images["train"], st.Images["restval"], st.Images["val"], st.Images["test"], st.Sentences)
		default:
			return fmt.Errorf("downstream synth: --task %q: want vqa, nlvr2, karpathy or all", task)
		}
	}
	return nil
}

func downstreamImport(c *cli.Context) error {
	var (
		records any
		rep     *downstream.Report
		err     error
		summary string
	)
	switch task := c.String("task"); task {
	case "vqa":
		var set *downstream.VQASet
		set, rep, err = downstream.ImportVQA(downstream.VQAConfig{
			Questions: c.String("questions"), Annotations: c.String("annotations"), ImageDir: c.String("images"),
		})
		if err == nil {
			records = set
			summary = fmt.Sprintf("%d questions of %s", len(set.Questions), set.Subtype)
			if p := c.String("answers"); p != "" {
				v, verr := downstream.BuildAnswerVocab(set.Questions, downstream.VocabConfig{MinCount: c.Int("min-count")})
				if verr != nil {
					return fmt.Errorf("downstream import: answers: %w", verr)
				}
				if verr := writeJSONFile(p, v); verr != nil {
					return fmt.Errorf("downstream import: %w", verr)
				}
				summary += fmt.Sprintf("; %d answers in the vocabulary", v.Len())
			}
		}
	case "nlvr2":
		var set *downstream.NLVR2Set
		set, rep, err = downstream.ImportNLVR2(downstream.NLVR2Config{File: c.String("file"), ImageDir: c.String("images")})
		if err == nil {
			records = set
			summary = fmt.Sprintf("%d examples", len(set.Examples))
		}
	case "karpathy":
		var set *downstream.KarpathySet
		set, rep, err = downstream.ImportKarpathy(downstream.KarpathyConfig{File: c.String("file"), ImageDir: c.String("images")})
		if err == nil {
			records = set
			summary = fmt.Sprintf("%d images of %s (train %d, restval %d, val %d, test %d)", len(set.Images), set.Dataset,
				len(set.Split(downstream.SplitTrain)), len(set.Split(downstream.SplitRestval)),
				len(set.Split(downstream.SplitVal)), len(set.Split(downstream.SplitTest)))
		}
	default:
		return fmt.Errorf("downstream import: --task %q: want vqa, nlvr2 or karpathy", task)
	}
	if rep != nil {
		rep.WriteSummary(c.App.Writer)
	}
	if err != nil {
		return fmt.Errorf("downstream import: %w", err)
	}
	fmt.Fprintf(c.App.Writer, "usable: %s\n", summary)
	if p := c.String("records"); p != "" {
		if err := writeJSONFile(p, records); err != nil {
			return fmt.Errorf("downstream import: %w", err)
		}
	}
	return nil
}

// writeJSONFile writes v as indented JSON to path.
func writeJSONFile(path string, v any) error {
	data, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/e2evlp/vlp/coordinator"
	"github.com/e2evlp/vlp/train"
	"github.com/urfave/cli/v2"
	"go.yaml.in/yaml/v3"
)

var jobInitCommand = &cli.Command{
	Name:  "init",
	Usage: "write a job.yaml for a shard directory: the manifest's path, sha256 and pair count, and the tokenizer",
	Description: "The vocabulary is --vocab, or one learnt from the shards' texts (as vlp vocab build --shards)\n" +
		"written beside the output file as vocab.txt. The file written is read back and checked as\n" +
		"vlp job submit checks it.",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "data", Required: true, Usage: "the shard directory (manifest.json and its shards)"},
		&cli.StringFlag{Name: "vocab", Usage: "the tokenizer's vocab.txt (default: learnt from the shards into vocab.txt beside --out)"},
		&cli.StringFlag{Name: "out", Value: "job.yaml", Usage: "the file to write"},
		&cli.BoolFlag{Name: "force", Usage: "overwrite --out"},
		&cli.StringFlag{Name: "name", Value: "default", EnvVars: []string{"VLP_JOB"}, Usage: "the job's name (the coordinator's --job)"},
		&cli.StringFlag{Name: "model", Value: "tiny", Usage: "the model preset"},
		&cli.IntFlag{Name: "global-batch", Value: 32, Usage: "pairs per committed step over all ranks"},
		&cli.IntFlag{Name: "epochs", Value: 1, Usage: "passes over the dataset"},
		&cli.IntFlag{Name: "per-unit", Value: 64, Usage: "pairs per work unit"},
		&cli.IntFlag{Name: "checkpoint-every", Value: 200, Usage: "checkpoint interval in steps"},
		&cli.IntFlag{Name: "min-workers", Value: 1, Usage: "members the ring needs before it trains"},
		&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "seeds the epoch plans and the initialisation"},
	},
	Action: jobInit,
}

func jobInit(c *cli.Context) error {
	out := c.String("out")
	if _, err := os.Stat(out); err == nil && !c.Bool("force") {
		return fmt.Errorf("job init: %s exists (--force overwrites it)", out)
	}
	spec := coordinator.JobSpec{
		Name: c.String("name"), Model: c.String("model"), GlobalBatch: c.Int("global-batch"), Epochs: c.Int("epochs"),
		CheckpointEvery: c.Int("checkpoint-every"), MinWorkers: c.Int("min-workers"), Seed: c.Uint64("seed"),
		Units: coordinator.UnitsSpec{PerUnit: c.Int("per-unit")}, Options: map[string]string{},
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return fmt.Errorf("job init: %w", err)
	}
	pairs, err := trainDataset(&spec, c.String("data"), c.String("vocab"), filepath.Dir(out))
	if err != nil {
		return fmt.Errorf("job init: %w", err)
	}
	spec.Units.Pairs = pairs
	b, err := yaml.Marshal(spec.WithDefaults())
	if err != nil {
		return fmt.Errorf("job init: %w", err)
	}
	if err := os.WriteFile(out, b, 0o644); err != nil {
		return fmt.Errorf("job init: %w", err)
	}
	back, err := coordinator.LoadJobSpec(out, spec.Name)
	if err != nil {
		return fmt.Errorf("job init: the file written does not load: %w", err)
	}
	if err := checkJobData(back); err != nil {
		return fmt.Errorf("job init: the file written does not check: %w", err)
	}
	fmt.Fprintf(c.App.Writer, "wrote %s: job %s, %d pairs, vocabulary %s\n", out, spec.Name, pairs, spec.Options[train.OptVocab])
	return nil
}

// checkJobData reads a spec's dataset as a worker will: the manifest (readable, its sha256, its
// pair count against units.pairs) and, for a model with a tokenizer, the vocabulary and its
// sha256. A linear job reads no data.
func checkJobData(spec coordinator.JobSpec) error {
	if spec.Model == "linear" {
		return nil
	}
	if spec.Dataset.SHA256 == "" {
		return errors.New("the spec's dataset has no sha256 (vlp job init writes it)")
	}
	if spec.Options[train.OptVocabSHA256] == "" {
		return fmt.Errorf("the spec's options have no %s (vlp job init writes it)", train.OptVocabSHA256)
	}
	if _, err := openJobShards(spec, "", ""); err != nil {
		return fmt.Errorf("dataset %s: %w", spec.Dataset.Manifest, err)
	}
	return nil
}

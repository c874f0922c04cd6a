package main

import (
	"errors"
	"fmt"

	"github.com/e2evlp/vlp/data"
	"github.com/urfave/cli/v2"
)

const catVocab = "VOCABULARY"

var vocabCommand = &cli.Command{
	Name:  "vocab",
	Usage: "WordPiece vocabularies",
	Subcommands: []*cli.Command{{
		Name:  "build",
		Usage: "learn a WordPiece vocabulary (BERT vocab.txt format) from captions",
		Description: "Reads the texts of --captions files (COCO captions JSON, or plain text with one caption\n" +
			"per line) and/or of every shard in --shards, and learns a WordPiece vocabulary of at most\n" +
			"--size tokens: [PAD] [UNK] [CLS] [SEP] [MASK], the characters (and ## continuations), then\n" +
			"merges by likelihood score count(ab)/(count(a)·count(b)). Deterministic. See\n" +
			"docs/data-pipeline.md.",
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "captions", Usage: "caption files (.json: COCO captions; else one per line)", EnvVars: []string{"VLP_VOCAB_CAPTIONS"}, Category: catVocab},
			&cli.StringFlag{Name: "shards", Usage: "directory with manifest.json and its shards", EnvVars: []string{"VLP_VOCAB_SHARDS"}, Category: catVocab},
			&cli.IntFlag{Name: "size", Usage: "most tokens in the vocabulary", Value: 30522, EnvVars: []string{"VLP_VOCAB_SIZE"}, Category: catVocab},
			&cli.StringFlag{Name: "out", Usage: "output vocab.txt", Required: true, EnvVars: []string{"VLP_VOCAB_OUT"}, Category: catVocab},
		},
		Action: vocabBuild,
	}},
}

func vocabBuild(c *cli.Context) error {
	files, dir := c.StringSlice("captions"), c.String("shards")
	if len(files) == 0 && dir == "" {
		return errors.New("vocab build: give --captions and/or --shards")
	}
	wc := data.WordCounts{}
	texts := 0
	for _, f := range files {
		n, err := wc.AddCaptionFile(f)
		if err != nil {
			return fmt.Errorf("vocab build: %w", err)
		}
		texts += n
	}
	if dir != "" {
		n, err := wc.AddShards(dir)
		if err != nil {
			return fmt.Errorf("vocab build: %w", err)
		}
		texts += n
	}
	if texts == 0 {
		return errors.New("vocab build: no texts in the input")
	}
	v, err := data.BuildVocabFromCounts(wc, c.Int("size"))
	if err != nil {
		return fmt.Errorf("vocab build: %w", err)
	}
	if err := v.Save(c.String("out")); err != nil {
		return fmt.Errorf("vocab build: %w", err)
	}
	fmt.Fprintf(c.App.Writer, "vocab build: %d texts, %d distinct words → %d tokens in %s\n", texts, len(wc), v.Size(), c.String("out"))
	return nil
}

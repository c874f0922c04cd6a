package main

import (
	"fmt"

	"github.com/e2evlp/vlp/model"
	"github.com/urfave/cli/v2"
)

const catModel = "MODEL"

var presetFlag = &cli.StringFlag{
	Name:     "preset",
	Usage:    "model preset: tiny, base, large, or a depth variant r50|r101|r152-enc6|enc12 (e.g. r101-enc6)",
	Value:    "base",
	EnvVars:  []string{"VLP_PRESET"},
	Category: catModel,
}

// modelCommand inspects model configurations; it needs no LibTorch.
var modelCommand = &cli.Command{
	Name:  "model",
	Usage: "inspect the E2E-VLP model",
	Subcommands: []*cli.Command{{
		Name:  "describe",
		Usage: "print the layers and parameter counts of a preset",
		Flags: []cli.Flag{presetFlag, &cli.BoolFlag{
			Name:    "verbose",
			Usage:   "also list every tensor with its shape",
			EnvVars: []string{"VLP_VERBOSE"},
		}, &cli.BoolFlag{
			Name:  "variants",
			Usage: "list the depth variants (ResNet-50/101/152 × encoder 6/12) with their parameter counts instead",
		}},
		Action: func(c *cli.Context) error {
			if c.Bool("variants") {
				if c.IsSet("preset") || c.Bool("verbose") {
					return fmt.Errorf("model describe: --variants lists every depth variant; it takes no --preset or --verbose")
				}
				return model.WriteVariants(c.App.Writer)
			}
			cfg, err := model.Preset(c.String("preset"))
			if err != nil {
				return err
			}
			s, err := model.Describe(cfg)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "E2E-VLP preset %q\n\n", c.String("preset"))
			return s.Write(c.App.Writer, c.Bool("verbose"))
		},
	}},
}

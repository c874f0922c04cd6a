package main

import (
	"fmt"

	"github.com/e2evlp/vlp/model"
	"github.com/urfave/cli/v2"
)

const catModel = "MODEL"

var presetFlag = &cli.StringFlag{
	Name:     "preset",
	Usage:    "model preset: tiny, base or large",
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
		}},
		Action: func(c *cli.Context) error {
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

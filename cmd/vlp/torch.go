package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

// torchCommand is replaced by the binding's real checks.
var torchCommand = &cli.Command{
	Name:  "torch",
	Usage: "LibTorch checks",
	Subcommands: []*cli.Command{{
		Name:   "check",
		Usage:  "print the LibTorch version, devices and a tiny forward/backward",
		Action: func(c *cli.Context) error { return errors.New("torch check: the binding is not built yet") },
	}},
}

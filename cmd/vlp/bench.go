package main

import "github.com/urfave/cli/v2"

// benchCommand groups the measurements recorded in docs/BENCHMARKS.md. Each
// subcommand lives in its own file (bench_<what>.go).
var benchCommand = &cli.Command{
	Name:  "bench",
	Usage: "measure parts of vlp on this machine",
	Subcommands: []*cli.Command{
		benchAllreduceCommand,
		benchAllreduceRankCommand, // hidden: one rank of `bench allreduce`
		benchDataCommand,
		benchInferCommand,
		benchDetectTextCommand,
		benchImageSizeCommand,
		benchTrainCommand,
		// Further benchmarks join this list, one file each.
	},
}

// Command vlp is the one binary of the vlp pretraining orchestrator: it runs
// the coordinator, the workers, the data importer and the operator tools.
//
// Each command group lives in its own file (coordinator.go, worker.go, …) as a
// `var xCommand = &cli.Command{…}`; this file only assembles them, prints the
// error an action returns and sets the exit code.
package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"
)

func newApp() *cli.App {
	return &cli.App{
		Name:  "vlp",
		Usage: "distributed pretraining of E2E-VLP",
		Description: "vlp shards COCO and Visual Genome into work units, runs a Raft-backed coordinator,\n" +
			"and trains E2E-VLP on GPU workers that ring-all-reduce their gradients over NATS.",
		Version:              version,
		EnableBashCompletion: true,
		Flags:                globalFlags,
		// Keep this list sorted by how a user meets the commands.
		Commands: []*cli.Command{
			versionCommand,
			dataCommand, shardCommand, downstreamCommand,
			vocabCommand,
			torchCommand,
			modelCommand, trainCommand, evalCommand, finetuneCommand,
			checkpointCommand,
			coordinatorCommand, jobCommand,
			workerCommand,
			benchCommand,
			nkeysCommand,
		},
	}
}

func main() {
	if err := newApp().Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "vlp:", err)
		os.Exit(1)
	}
}

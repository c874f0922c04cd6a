package main

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/e2evlp/vlp/coordinator"
	"github.com/urfave/cli/v2"
)

var jobCommand = &cli.Command{
	Name:  "job",
	Usage: "submit, inspect and stop the job a coordinator runs",
	Subcommands: []*cli.Command{
		{
			Name: "submit",
			Usage: "submit the job spec (YAML); submitting the same spec again is a no-op; a job that never " +
				"trained, or that was stopped and has no workers left, is replaced",
			Description: "Before it submits, the command checks the spec's dataset as a worker would: the manifest\n" +
				"is readable and matches dataset.sha256, units.pairs is its pair count, and the vocabulary\n" +
				"(option vocab) matches vocab_sha256. --skip-data-check skips this where this host does not\n" +
				"see the dataset.",
			ArgsUsage: "job.yaml",
			Flags: append([]cli.Flag{
				&cli.BoolFlag{Name: "skip-data-check", Usage: "do not read the dataset before submitting (this host does not see it)"},
			}, apiClientFlags...),
			Action: jobSubmit,
		},
		jobInitCommand,
		{
			Name:   "status",
			Usage:  "workers, generation, step, epoch progress and checkpoints",
			Flags:  append([]cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print the status as JSON"}}, apiClientFlags...),
			Action: jobStatus,
		},
		{
			Name:   "stop",
			Usage:  "stop the job: workers finish their step, rank 0 writes a final checkpoint, and they leave",
			Flags:  append([]cli.Flag{&cli.StringFlag{Name: "reason", Value: "stopped by the operator"}}, apiClientFlags...),
			Action: jobStop,
		},
		{
			Name:   "resume",
			Usage:  "resume a stopped job: workers that join restore the checkpoint its stop wrote",
			Flags:  apiClientFlags,
			Action: jobResume,
		},
	},
}

func jobSubmit(c *cli.Context) error {
	if c.NArg() != 1 {
		return fmt.Errorf("job submit: want one job.yaml argument")
	}
	spec, err := coordinator.LoadJobSpec(c.Args().First(), c.String("job"))
	if err != nil {
		return err
	}
	if spec.Name != c.String("job") {
		return fmt.Errorf("job submit: the spec names job %q but --job is %q", spec.Name, c.String("job"))
	}
	if spec.Dataset.Manifest != "" && !c.Bool("skip-data-check") {
		if err := checkJobData(spec); err != nil {
			return fmt.Errorf("job submit: %w (--skip-data-check if this host does not see the dataset)", err)
		}
	}
	cl, ctx, done, err := apiClient(c)
	if err != nil {
		return err
	}
	defer done()
	st, err := cl.Submit(ctx, spec)
	if err != nil {
		return explain(err)
	}
	fmt.Fprintf(c.App.Writer, "job %s submitted: %s, %d epoch(s), global batch %d\n", spec.Name, st.State, spec.Epochs, spec.GlobalBatch)
	return nil
}

func jobStatus(c *cli.Context) error {
	return withStatus(c, func(_ context.Context, _ *coordinator.Client, st *coordinator.JobStatus) error {
		if c.Bool("json") {
			enc := json.NewEncoder(c.App.Writer)
			enc.SetIndent("", "  ")
			return enc.Encode(st)
		}
		printStatus(c, st)
		return nil
	})
}

// withStatus connects to the coordinators, asks for the job's status and runs fn with it.
func withStatus(c *cli.Context, fn func(ctx context.Context, cl *coordinator.Client, st *coordinator.JobStatus) error) error {
	cl, ctx, done, err := apiClient(c)
	if err != nil {
		return err
	}
	defer done()
	st, err := cl.Status(ctx)
	if err != nil {
		return explain(err)
	}
	return fn(ctx, cl, st)
}

func printStatus(c *cli.Context, st *coordinator.JobStatus) {
	out := c.App.Writer
	if st.Job == nil {
		fmt.Fprintf(out, "no job submitted (leader %s, term %d)\n", st.Leader, st.Term)
		return
	}
	state := string(st.State)
	if st.Reason != "" {
		state += " (" + st.Reason + ")"
	}
	fmt.Fprintf(out, "job         %s: %s\n", st.Job.Name, state)
	fmt.Fprintf(out, "leader      %s (term %d, index %d)\n", st.Leader, st.Term, st.AppliedIndex)
	g := st.Generation
	ready := "waiting for workers"
	if g.Ready {
		ready = "ready"
	}
	fmt.Fprintf(out, "generation  %d: %d worker(s), min %d, max %d, %s\n", g.Number, len(g.Members), st.Job.MinWorkers, st.Job.MaxWorkers, ready)
	if g.HandoverPending {
		fmt.Fprintln(out, "            handover pending: the survivors have not yet reported the last committed step")
	}
	if g.Restore != nil {
		from := "initialise from the seed"
		if g.Restore.Location != "" {
			from = "load checkpoint " + g.Restore.Location
		}
		fmt.Fprintf(out, "restore     step %d: %s\n", g.Restore.Step, from)
	}
	fmt.Fprintf(out, "step        %d\n", st.Step)
	fmt.Fprintf(out, "epoch       %d of %d: %.1f%% (%d done)\n", st.Epoch, st.Job.Epochs, 100*st.EpochProgress, st.EpochsDone)
	u := st.Units
	fmt.Fprintf(out, "units       %d pending, %d leased, %d orphaned, %d done\n", u.Pending, u.Leased, u.Orphaned, u.Done)
	last := "none"
	for i := len(st.Checkpoints) - 1; i >= 0; i-- {
		ck := st.Checkpoints[i]
		if ck.Status == coordinator.CheckpointDurable || ck.Status == coordinator.CheckpointVerified {
			last = fmt.Sprintf("step %d, %s, %s, %s ago", ck.Step, ck.Status, ck.Location, time.Since(time.UnixMilli(ck.AtMS)).Round(time.Second))
			break
		}
	}
	fmt.Fprintf(out, "checkpoint  %s\n", last)
	if len(g.Members) > 0 {
		w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "\nRANK\tWORKER\tNAME\tDEVICE\tADDR")
		for _, m := range g.Members {
			fmt.Fprintf(w, "%d\t%d\t%s\t%s\t%s\n", m.Rank, m.WorkerID, m.Name, m.Device, m.Addr)
		}
		w.Flush()
	}
}

func jobStop(c *cli.Context) error {
	cl, ctx, done, err := apiClient(c)
	if err != nil {
		return err
	}
	defer done()
	st, err := cl.Stop(ctx, c.String("reason"))
	if err != nil {
		return explain(err)
	}
	fmt.Fprintf(c.App.Writer, "job %s: %s\n", st.Job.Name, st.State)
	return nil
}

// jobResume resubmits a stopped job's own spec, which the coordinator reads as a resume.
func jobResume(c *cli.Context) error {
	return withStatus(c, func(ctx context.Context, cl *coordinator.Client, st *coordinator.JobStatus) error {
		if st.Job == nil {
			return fmt.Errorf("job resume: no job submitted")
		}
		if st.State != coordinator.JobStopped {
			return fmt.Errorf("job resume: job %s is %s, not stopped", st.Job.Name, st.State)
		}
		st, err := cl.Submit(ctx, *st.Job)
		if err != nil {
			return explain(err)
		}
		fmt.Fprintf(c.App.Writer, "job %s: %s at step %d\n", st.Job.Name, st.State, st.Step)
		return nil
	})
}

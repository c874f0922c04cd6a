package main

import (
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
			Name:      "submit",
			Usage:     "submit the job spec (YAML); submitting the same spec again is a no-op",
			ArgsUsage: "job.yaml",
			Flags:     apiClientFlags,
			Action:    jobSubmit,
		},
		{
			Name:   "status",
			Usage:  "workers, generation, step, epoch progress and checkpoints",
			Flags:  append([]cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print the status as JSON"}}, apiClientFlags...),
			Action: jobStatus,
		},
		{
			Name:   "stop",
			Usage:  "stop the job: workers finish their step and leave",
			Flags:  append([]cli.Flag{&cli.StringFlag{Name: "reason", Value: "stopped by the operator"}}, apiClientFlags...),
			Action: jobStop,
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
	cl, ctx, done, err := apiClient(c)
	if err != nil {
		return err
	}
	defer done()
	st, err := cl.Status(ctx)
	if err != nil {
		return explain(err)
	}
	if c.Bool("json") {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	printStatus(c, st)
	return nil
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

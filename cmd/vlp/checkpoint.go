package main

import (
	"encoding/json"

	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/e2evlp/vlp/checkpoint"
	"github.com/urfave/cli/v2"
)

const catCheckpoint = "CHECKPOINT"

var (
	checkpointStoreFlag = &cli.StringFlag{
		Name:     "store",
		Usage:    "checkpoint store file (bbolt)",
		EnvVars:  []string{"VLP_CHECKPOINT_STORE"},
		Required: true,
		Category: catCheckpoint,
	}
	checkpointIDFlag = &cli.Uint64Flag{
		Name:     "id",
		Usage:    "checkpoint id (see ls); default: the latest (export: the latest that verifies)",
		Category: catCheckpoint,
	}
	checkpointJSONFlag = &cli.BoolFlag{
		Name:     "json",
		Usage:    "print JSON instead of a table",
		Category: catCheckpoint,
	}
)

// checkpointCommand inspects and exports a checkpoint store. Every
// subcommand opens the store read-only, so it runs beside a job that is not
// writing at that moment (a writer holds the file lock).
var checkpointCommand = &cli.Command{
	Name:  "checkpoint",
	Usage: "list, inspect, verify and export checkpoints",
	Subcommands: []*cli.Command{
		{
			Name:   "ls",
			Usage:  "list the checkpoints in a store, oldest first (without verifying them)",
			Flags:  []cli.Flag{checkpointStoreFlag, checkpointJSONFlag},
			Action: checkpointList,
		},
		{
			Name:   "inspect",
			Usage:  "print a checkpoint's metadata and tensors",
			Flags:  []cli.Flag{checkpointStoreFlag, checkpointIDFlag, checkpointJSONFlag},
			Action: checkpointInspect,
		},
		{
			Name:   "verify",
			Usage:  "check every tensor of every checkpoint (or of --id) against its sha256; fails if any does not verify",
			Flags:  []cli.Flag{checkpointStoreFlag, checkpointIDFlag},
			Action: checkpointVerify,
		},
		{
			Name:  "export",
			Usage: "write a checkpoint in another framework's format",
			Flags: []cli.Flag{
				checkpointStoreFlag, checkpointIDFlag,
				&cli.StringFlag{Name: "format", Usage: "output format: pytorch", Value: "pytorch", Category: catCheckpoint},
				&cli.StringFlag{Name: "out", Usage: "output file", Required: true, Category: catCheckpoint},
				&cli.StringSliceFlag{Name: "include", Usage: "also export these groups: optimizer, rng (names then carry a \"<group>/\" prefix)", Category: catCheckpoint},
			},
			Action: checkpointExport,
		},
	},
}

func openCheckpointStore(c *cli.Context) (*checkpoint.Store, error) {
	return checkpoint.Open(c.String(checkpointStoreFlag.Name), checkpoint.Options{ReadOnly: true})
}

func checkpointList(c *cli.Context) error {
	s, err := openCheckpointStore(c)
	if err != nil {
		return err
	}
	defer s.Close()
	list, err := s.List()
	if err != nil {
		return err
	}
	if c.Bool(checkpointJSONFlag.Name) {
		return writeJSON(c.App.Writer, list)
	}
	tw := tabwriter.NewWriter(c.App.Writer, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTEP\tEPOCH\tCREATED\tTENSORS\tSIZE")
	for _, in := range list {
		if in.Format == 0 {
			fmt.Fprintf(tw, "%d\t?\t?\t?\t?\tunreadable metadata (run verify)\n", in.ID)
			continue
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t%s\t%d\t%s\n", in.ID, in.Step(), in.Meta.Epoch,
			in.Created().UTC().Format(time.RFC3339), len(in.Tensors), humanBytes(in.Bytes))
	}
	return tw.Flush()
}

func checkpointInspect(c *cli.Context) error {
	s, err := openCheckpointStore(c)
	if err != nil {
		return err
	}
	defer s.Close()
	var in checkpoint.Info
	if c.IsSet(checkpointIDFlag.Name) {
		in, err = s.Stat(c.Uint64(checkpointIDFlag.Name))
	} else if in, err = s.Latest(); err == nil && in.Format == 0 {
		in, err = s.Stat(in.ID) // say why its metadata is unreadable
	}
	if err != nil {
		return err
	}
	if c.Bool(checkpointJSONFlag.Name) {
		return writeJSON(c.App.Writer, in)
	}
	w := c.App.Writer
	fmt.Fprintf(w, "checkpoint %d in %s\n", in.ID, s.Path())
	fmt.Fprintf(w, "format:    %d\nstep:      %d\nepoch:     %d\ncreated:   %s\nsize:      %s in %d tensors\n",
		in.Format, in.Step(), in.Meta.Epoch, in.Created().UTC().Format(time.RFC3339Nano), humanBytes(in.Bytes), len(in.Tensors))
	if len(in.Meta.JobSpec) > 0 {
		fmt.Fprintf(w, "job spec:  %s\n", in.Meta.JobSpec)
	}
	for k, v := range in.Meta.Checksums {
		fmt.Fprintf(w, "checksum:  %s %s\n", k, v)
	}
	for r, cur := range in.Meta.Cursors {
		fmt.Fprintf(w, "cursor %d:  %s\n", r, cur)
	}
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tNAME\tDTYPE\tSHAPE\tBYTES\tSHA256")
	for _, t := range in.Tensors {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%d\t%.16s…\n", t.Group, t.Name, t.DType, t.Shape, t.Bytes, t.SHA256)
	}
	return tw.Flush()
}

func checkpointVerify(c *cli.Context) error {
	s, err := openCheckpointStore(c)
	if err != nil {
		return err
	}
	defer s.Close()
	var ids []uint64
	if c.IsSet(checkpointIDFlag.Name) {
		ids = []uint64{c.Uint64(checkpointIDFlag.Name)}
	} else {
		list, err := s.List()
		if err != nil {
			return err
		}
		for _, in := range list {
			ids = append(ids, in.ID)
		}
		if len(ids) == 0 {
			return fmt.Errorf("%w: %s holds no checkpoint", checkpoint.ErrNotFound, s.Path())
		}
	}
	w := c.App.Writer
	failed := 0
	var newestOK uint64
	for _, id := range ids {
		began := time.Now()
		if err := s.Verify(id); err != nil {
			failed++
			fmt.Fprintf(w, "checkpoint %d: FAILED\n", id)
			for _, line := range strings.Split(err.Error(), "\n") {
				fmt.Fprintf(w, "  %s\n", line)
			}
			continue
		}
		in, _ := s.Stat(id)
		newestOK = id
		fmt.Fprintf(w, "checkpoint %d: ok (step %d, %s in %v)\n", id, in.Step(), humanBytes(in.Bytes), time.Since(began).Round(time.Millisecond))
	}
	if newestOK != 0 && !c.IsSet(checkpointIDFlag.Name) {
		fmt.Fprintf(w, "latest verified: checkpoint %d\n", newestOK)
	}
	if failed > 0 {
		return fmt.Errorf("%w: %d of %d checkpoints in %s failed verification", checkpoint.ErrCorrupt, failed, len(ids), s.Path())
	}
	return nil
}

func checkpointExport(c *cli.Context) error {
	if f := c.String("format"); f != "pytorch" {
		return fmt.Errorf("checkpoint export: unknown --format %q (supported: pytorch)", f)
	}
	opts := checkpoint.ExportOptions{Groups: []checkpoint.Group{checkpoint.GroupParams}}
	for _, g := range c.StringSlice("include") {
		switch checkpoint.Group(g) {
		case checkpoint.GroupOptimizer, checkpoint.GroupRNG:
			opts.Groups = append(opts.Groups, checkpoint.Group(g))
		default:
			return fmt.Errorf("checkpoint export: unknown --include %q (optimizer or rng)", g)
		}
	}
	s, err := openCheckpointStore(c)
	if err != nil {
		return err
	}
	defer s.Close()
	id := c.Uint64(checkpointIDFlag.Name)
	if !c.IsSet(checkpointIDFlag.Name) {
		in, skipped, err := s.LatestVerifiedInfo()
		if err != nil {
			return err
		}
		for _, skip := range skipped {
			fmt.Fprintf(c.App.ErrWriter, "vlp: skipped a checkpoint that fails verification: %v\n", skip)
		}
		id = in.ID
	}
	out := c.String("out")
	opts.ArchiveName = strings.TrimSuffix(filepath.Base(out), filepath.Ext(out))
	// Write beside the target and rename, so a failed export leaves no
	// half-written file under the final name.
	tmp, err := os.CreateTemp(filepath.Dir(out), filepath.Base(out)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := s.ExportPyTorch(tmp, id, opts); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return err
	}
	in, err := s.Stat(id)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "exported checkpoint %d (step %d) to %s\n", id, in.Step(), out)
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

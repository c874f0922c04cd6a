package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/e2evlp/vlp/sharding"
	"github.com/urfave/cli/v2"
)

var shardCommand = &cli.Command{
	Name:  "shard",
	Usage: "import COCO / Visual Genome into tar shards, inspect and verify them",
	Subcommands: []*cli.Command{
		{
			Name:  "build",
			Usage: "import COCO 2017 and/or Visual Genome 1.4 into WebDataset tar shards + manifest.json",
			Description: "Resumable: finished shards of an interrupted build with the same inputs are verified\n" +
				"and kept. Skipped input is counted by reason in the summary; the exit status is non-zero\n" +
				"only when nothing usable remains (or, with --strict, when an annotation file is unusable).",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "coco", Usage: "COCO root (annotations/, train2017/)", EnvVars: []string{"VLP_COCO"}},
				&cli.StringFlag{Name: "vg", Usage: "Visual Genome root (image_data.json, …, VG_100K/)", EnvVars: []string{"VLP_VG"}},
				&cli.StringFlag{Name: "out", Usage: "shard directory", Required: true, EnvVars: []string{"VLP_SHARDS"}},
				&cli.IntFlag{Name: "shard-size", Usage: "images per shard", Value: 1000, EnvVars: []string{"VLP_SHARD_SIZE"}},
				&cli.IntFlag{Name: "workers", Usage: "shards written in parallel (0: one per CPU)", EnvVars: []string{"VLP_SHARD_WORKERS"}},
				&cli.IntFlag{Name: "classes", Usage: "VG object names kept as classes", Value: sharding.DefaultClasses, EnvVars: []string{"VLP_CLASSES"}},
				&cli.IntFlag{Name: "attributes", Usage: "VG attributes kept", Value: sharding.DefaultAttributes, EnvVars: []string{"VLP_ATTRIBUTES"}},
				&cli.IntFlag{Name: "max-image-side", Usage: "widest or tallest image decoded, pixels (larger: skipped as image_too_large)", Value: sharding.DefaultMaxImageSide, EnvVars: []string{"VLP_MAX_IMAGE_SIDE"}},
				&cli.Int64Flag{Name: "max-image-pixels", Usage: "most pixels (width x height) decoded", Value: sharding.DefaultMaxImagePixels, EnvVars: []string{"VLP_MAX_IMAGE_PIXELS"}},
				&cli.Int64Flag{Name: "max-image-mib", Usage: "largest image file read, MiB", Value: sharding.DefaultMaxImageBytes >> 20, EnvVars: []string{"VLP_MAX_IMAGE_MIB"}},
				&cli.Int64Flag{Name: "decode-memory-mib", Usage: "memory all image decodes may hold at once, MiB", Value: sharding.DefaultDecodeMemory >> 20, EnvVars: []string{"VLP_DECODE_MEMORY_MIB"}},
				&cli.IntFlag{Name: "max-text-bytes", Usage: "longest caption, region phrase, name or attribute kept, bytes (longer: skipped as text_too_long)", Value: sharding.DefaultMaxTextBytes, EnvVars: []string{"VLP_MAX_TEXT_BYTES"}},
				&cli.IntFlag{Name: "max-record-mib", Usage: "longest annotation array element read, MiB (longer: skipped as record_too_large)", Value: sharding.DefaultMaxRecordBytes >> 20, EnvVars: []string{"VLP_MAX_RECORD_MIB"}},
				&cli.BoolFlag{Name: "strict", Usage: "fail on any unusable annotation file", EnvVars: []string{"VLP_STRICT"}},
				&cli.BoolFlag{Name: "quiet", Usage: "no progress output", EnvVars: []string{"VLP_QUIET"}},
			},
			Action: shardBuild,
		},
		{
			Name:      "inspect",
			Usage:     "print counts, vocabularies, the shard table and one sample (also drawn as a PNG)",
			ArgsUsage: "DIR",
			Flags: []cli.Flag{
				&cli.IntFlag{Name: "shard", Usage: "shard index of the sample to show", EnvVars: []string{"VLP_INSPECT_SHARD"}},
				&cli.IntFlag{Name: "sample", Usage: "sample index inside that shard", EnvVars: []string{"VLP_INSPECT_SAMPLE"}},
				&cli.StringFlag{Name: "png", Usage: "where to write the drawn sample (default DIR/inspect-<key>.png)", EnvVars: []string{"VLP_INSPECT_PNG"}},
				&cli.BoolFlag{Name: "no-verify", Usage: "read only the sample (at its sample_offsets entry), not the whole shard: its checksum is not verified", EnvVars: []string{"VLP_INSPECT_NO_VERIFY"}},
			},
			Action: shardInspect,
		},
		{
			Name:      "verify",
			Usage:     "check every shard's structure and sha256 against the manifest",
			ArgsUsage: "DIR",
			Action:    shardVerify,
		},
	},
}

func shardBuild(c *cli.Context) error {
	cfg := sharding.BuildConfig{
		COCODir:    c.String("coco"),
		VGDir:      c.String("vg"),
		Out:        c.String("out"),
		ShardSize:  c.Int("shard-size"),
		Workers:    c.Int("workers"),
		Classes:    c.Int("classes"),
		Attributes: c.Int("attributes"),
		Strict:     c.Bool("strict"),

		MaxImageSide:   c.Int("max-image-side"),
		MaxImagePixels: c.Int64("max-image-pixels"),
		MaxImageBytes:  mib(c.Int64("max-image-mib")),
		DecodeMemory:   mib(c.Int64("decode-memory-mib")),
		MaxTextBytes:   c.Int("max-text-bytes"),
		MaxRecordBytes: int(mib(int64(c.Int("max-record-mib")))),
	}
	if !c.Bool("quiet") {
		cfg.Progress = c.App.ErrWriter
	}
	start := time.Now()
	m, rep, err := sharding.Build(c.Context, cfg)
	w := c.App.Writer
	if rep != nil && (m != nil || errors.Is(err, sharding.ErrNothingUsable)) {
		rep.WriteSummary(w)
	}
	if m != nil {
		fmt.Fprintf(w, "imported %d images, %d pairs (%d captions, %d regions), %d objects into %d shards in %s (%.1fs)\n",
			m.Images, m.Pairs, m.Captions, m.Regions, m.Objects, len(m.Shards), cfg.Out, time.Since(start).Seconds())
		fmt.Fprintf(w, "vocabularies: %d classes, %d attributes; sources: %v\n", len(m.Classes), len(m.Attributes), m.Sources)
	}
	if err != nil {
		return fmt.Errorf("shard build: %w", err)
	}
	return nil
}

// mib converts a flag in MiB to bytes; out-of-range values stay out of
// range (Validate names them) without overflowing.
func mib(n int64) int64 { return max(-1<<40, min(n, 1<<40)) << 20 }

func dirArg(c *cli.Context) (string, error) {
	if c.NArg() != 1 {
		return "", fmt.Errorf("%s: want one DIR argument, got %d", c.Command.FullName(), c.NArg())
	}
	return c.Args().First(), nil
}

func shardInspect(c *cli.Context) error {
	dir, err := dirArg(c)
	if err != nil {
		return err
	}
	m, err := sharding.ReadManifest(dir)
	if err != nil {
		return fmt.Errorf("shard inspect: %w", err)
	}
	w := c.App.Writer
	fmt.Fprintf(w, "%s: %d images, %d pairs (%d captions, %d regions), %d objects, %d shards\n",
		dir, m.Images, m.Pairs, m.Captions, m.Regions, m.Objects, len(m.Shards))
	fmt.Fprintf(w, "sources: %v\n", m.Sources)
	fmt.Fprintf(w, "classes: %d (%s)\nattributes: %d (%s)\n", len(m.Classes), head(m.Classes, 10), len(m.Attributes), head(m.Attributes, 10))
	for _, cm := range m.CocoCategories {
		fmt.Fprintf(w, "  coco category %d %q -> class %d %q (%s)\n", cm.CocoID, cm.Name, cm.Class, m.Classes[cm.Class], cm.Via)
	}
	if len(m.Skipped) > 0 {
		fmt.Fprintf(w, "skipped at import: %v\n", m.Skipped)
	}
	for _, u := range sortedKeys(m.Units) {
		t := m.Units[u]
		fmt.Fprintf(w, "  %-10s read %d = kept %d + skipped %d %v\n", u, t.Read, t.Kept, t.SkippedTotal(), t.Skipped)
	}
	fmt.Fprintf(w, "%-20s %8s %8s %12s  %s\n", "shard", "images", "pairs", "bytes", "sha256")
	for _, s := range m.Shards {
		fmt.Fprintf(w, "%-20s %8d %8d %12d  %s\n", s.Name, s.Images, s.Pairs, s.Bytes, s.SHA256)
	}
	si, ni := c.Int("shard"), c.Int("sample")
	if si < 0 || si >= len(m.Shards) {
		return fmt.Errorf("shard inspect: --shard %d: there are %d shards", si, len(m.Shards))
	}
	info := m.Shards[si]
	if ni < 0 || ni >= info.Images {
		return fmt.Errorf("shard inspect: --sample %d: %s has %d samples", ni, info.Name, info.Images)
	}
	verified := !c.Bool("no-verify")
	var s sharding.Sample
	if verified {
		s, err = sharding.ReadVerifiedSample(dir, info, ni)
	} else {
		s, err = sharding.ReadSampleFile(dir, info, ni)
	}
	if err != nil {
		return fmt.Errorf("shard inspect: %w (sample not drawn)", err)
	}
	js, _ := json.MarshalIndent(s.Meta, "", "  ")
	fmt.Fprintf(w, "sample %d of %s (%d JPEG bytes):\n%s\n", ni, info.Name, len(s.JPEG), js)
	if verified {
		fmt.Fprintf(w, "%s: structure, size and sha256 verified\n", info.Name)
	} else {
		fmt.Fprintf(w, "%s: NOT verified (--no-verify read only this sample; `vlp shard verify` checks the shards)\n", info.Name)
	}
	img, err := sharding.DrawSample(&s.Meta, s.JPEG, m.Classes, m.Attributes)
	if err != nil {
		return fmt.Errorf("shard inspect: %w", err)
	}
	path := c.String("png")
	if path == "" {
		path = filepath.Join(dir, "inspect-"+s.Meta.Key+".png")
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("shard inspect: %w", err)
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return fmt.Errorf("shard inspect: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("shard inspect: %w", err)
	}
	fmt.Fprintf(w, "drawn to %s\n", path)
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func head(s []string, n int) string {
	if len(s) <= n {
		return fmt.Sprint(s)
	}
	return fmt.Sprint(s[:n]) + " …"
}

func shardVerify(c *cli.Context) error {
	dir, err := dirArg(c)
	if err != nil {
		return err
	}
	checks, err := sharding.Verify(dir)
	if err != nil {
		return fmt.Errorf("shard verify: %w", err)
	}
	failed, samples, pairs := 0, 0, 0
	for _, ch := range checks {
		samples += ch.Samples
		pairs += ch.Pairs
		if ch.Err != nil {
			failed++
			fmt.Fprintf(c.App.Writer, "FAIL %s: %v\n", ch.Name, ch.Err)
		} else {
			fmt.Fprintf(c.App.Writer, "ok   %s: %d samples, %d pairs\n", ch.Name, ch.Samples, ch.Pairs)
		}
	}
	if failed > 0 {
		return fmt.Errorf("shard verify: %d of %d shards failed", failed, len(checks))
	}
	fmt.Fprintf(c.App.Writer, "all %d shards verified: %d samples, %d pairs\n", len(checks), samples, pairs)
	return nil
}

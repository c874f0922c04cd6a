package main

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/e2evlp/vlp/synth"
	"github.com/urfave/cli/v2"
)

// The real datasets' sizes, for `data synth --scale full`: 118,287 COCO
// train2017 images, 108,077 VG images, about 51K of them in both.
const (
	fullImages    = 118287 + 108077 - 51208
	fullOverlap   = 51208.0 / fullImages
	fullCOCOShare = (118287.0 - 51208) / (fullImages - 51208)
)

var dataCommand = &cli.Command{
	Name:  "data",
	Usage: "generate training data",
	Subcommands: []*cli.Command{{
		Name:  "synth",
		Usage: "write the synthetic shapes world as COCO 2017 and Visual Genome 1.4 files",
		Description: "Writes OUT/coco (annotations/captions_train2017.json, annotations/instances_train2017.json,\n" +
			"train2017/*.jpg) and OUT/vg (image_data.json, region_descriptions.json, objects.json,\n" +
			"attributes.json, VG_100K/*.jpg). --overlap of the images are in both, joined by coco_id.\n" +
			"--scale full writes annotation files the size of the real ones (175K images; 5 captions,\n" +
			"7 instances per COCO image; 50 regions, 35 objects per VG image) over a pool of 512 tiny\n" +
			"hard-linked JPEGs.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "out", Usage: "output directory", Required: true, EnvVars: []string{"VLP_SYNTH_OUT"}},
			&cli.IntFlag{Name: "images", Usage: "images in the world (both datasets together)", Value: 1000, EnvVars: []string{"VLP_SYNTH_IMAGES"}},
			&cli.Uint64Flag{Name: "seed", Usage: "world seed", Value: 1, EnvVars: []string{"VLP_SYNTH_SEED"}},
			&cli.IntFlag{Name: "width", Usage: "image width in pixels", Value: 96, EnvVars: []string{"VLP_SYNTH_WIDTH"}},
			&cli.IntFlag{Name: "height", Usage: "image height in pixels", Value: 96, EnvVars: []string{"VLP_SYNTH_HEIGHT"}},
			&cli.IntFlag{Name: "max-objects", Usage: "most shapes per image, 1–4 (the learning test and vlp train's held-out set use 2)", Value: 4, EnvVars: []string{"VLP_SYNTH_MAX_OBJECTS"}},
			&cli.Float64Flag{Name: "overlap", Usage: "fraction of images in both COCO and VG", Value: 0.3, EnvVars: []string{"VLP_SYNTH_OVERLAP"}},
			&cli.IntFlag{Name: "regions", Usage: "pad VG images to this many regions (0: one per object and pair)", EnvVars: []string{"VLP_SYNTH_REGIONS"}},
			&cli.IntFlag{Name: "instances", Usage: "pad COCO images to this many instance annotations (copies)", EnvVars: []string{"VLP_SYNTH_INSTANCES"}},
			&cli.IntFlag{Name: "objects", Usage: "pad VG images to this many objects (copies)", EnvVars: []string{"VLP_SYNTH_OBJECTS"}},
			&cli.IntFlag{Name: "polygon-points", Usage: "points per COCO segmentation polygon (0: the 4 box corners)", EnvVars: []string{"VLP_SYNTH_POLYGON_POINTS"}},
			&cli.IntFlag{Name: "image-pool", Usage: "encode only this many JPEGs and hard-link the rest (0: all distinct)", EnvVars: []string{"VLP_SYNTH_IMAGE_POOL"}},
			&cli.StringFlag{Name: "scale", Usage: `"full": real dataset sizes (overrides --images, --overlap and the padding flags; 48 px images)`, EnvVars: []string{"VLP_SYNTH_SCALE"}},
			&cli.IntFlag{Name: "workers", Usage: "rendering goroutines", Value: 4, EnvVars: []string{"VLP_SYNTH_WORKERS"}},
		},
		Action: dataSynth,
	}},
}

func dataSynth(c *cli.Context) error {
	cfg := synth.ExportConfig{
		World: synth.Config{
			Seed:   c.Uint64("seed"),
			Images: c.Int("images"),
			Width:  c.Int("width"),
			Height: c.Int("height"),
			// MaxObjects is checked by ExportConfig.Validate (1..4).
			MaxObjects: c.Int("max-objects"),
		},
		Overlap:       c.Float64("overlap"),
		Regions:       c.Int("regions"),
		Instances:     c.Int("instances"),
		Objects:       c.Int("objects"),
		PolygonPoints: c.Int("polygon-points"),
		ImagePool:     c.Int("image-pool"),
		Workers:       c.Int("workers"),
	}
	switch c.String("scale") {
	case "":
	case "full":
		cfg.World.Images, cfg.World.Width, cfg.World.Height = fullImages, 48, 48
		cfg.Overlap, cfg.COCOShare, cfg.ImagePool = fullOverlap, fullCOCOShare, 512
		// Per-image annotation counts of the real files: 5 captions, ~7.3
		// instances with ~24-point polygons, ~50 regions, ~35 objects.
		cfg.Regions, cfg.Instances, cfg.Objects, cfg.PolygonPoints = 50, 7, 35, 24
	default:
		return fmt.Errorf("data synth: --scale %q: only \"full\" is known", c.String("scale"))
	}
	out := c.String("out")
	start := time.Now()
	st, err := synth.Export(cfg, filepath.Join(out, "coco"), filepath.Join(out, "vg"))
	if err != nil {
		return fmt.Errorf("data synth: %w", err)
	}
	fmt.Fprintf(c.App.Writer, "wrote %s/coco: %d images, %d captions, %d instances\n", out, st.COCOImages, st.Captions, st.Instances)
	fmt.Fprintf(c.App.Writer, "wrote %s/vg: %d images (%d also in COCO), %d regions, %d objects\n", out, st.VGImages, st.Shared, st.Regions, st.Objects)
	fmt.Fprintf(c.App.Writer, "in %.1fs\n", time.Since(start).Seconds())
	return nil
}

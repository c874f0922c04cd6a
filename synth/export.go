package synth

import (
	"bufio"
	"encoding/json"
	"fmt"
	"image"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// ExportConfig says how a world is written as COCO 2017 and Visual Genome
// 1.4 files.
type ExportConfig struct {
	World Config
	// Overlap is the fraction of images present in both datasets (VG lists
	// their coco_id), as about 29% of the real union is.
	Overlap float64
	// COCOShare is the fraction of the other images that go to COCO only;
	// the rest are VG only. 0 means 0.5.
	COCOShare float64
	// Regions pads each VG image to this many region descriptions with
	// paraphrases (real VG has about 50 per image); 0 keeps the natural ones
	// (one per object and one per pair).
	Regions int
	// Instances pads each COCO image to this many instance annotations
	// (copies of its objects; real COCO has about 7), and Objects each VG
	// image to this many objects (real VG has about 35); 0 keeps the drawn
	// objects. For scale runs: copies are duplicates, not new shapes.
	Instances, Objects int
	// PolygonPoints is the number of points of each COCO segmentation
	// polygon (traced around the box); 0 means 4, the box corners.
	PolygonPoints int
	// ImagePool, when > 0, encodes only this many distinct JPEGs and
	// hard-links every image file to one of them (pool[i % ImagePool]): for
	// scale runs of the annotation files, where the pixels do not matter.
	ImagePool int
	// Workers render images in parallel; 0 means 4.
	Workers int
}

// Validate checks the export settings and the world.
func (c ExportConfig) Validate() error {
	if err := c.World.Validate(); err != nil {
		return err
	}
	switch {
	case c.Overlap < 0 || c.Overlap > 1:
		return fmt.Errorf("%w: Overlap %g outside [0, 1]", ErrInvalidConfig, c.Overlap)
	case c.COCOShare < 0 || c.COCOShare > 1:
		return fmt.Errorf("%w: COCOShare %g outside [0, 1]", ErrInvalidConfig, c.COCOShare)
	case c.Regions < 0 || c.Regions > 1000:
		return fmt.Errorf("%w: Regions %d outside [0, 1000]", ErrInvalidConfig, c.Regions)
	case c.Instances < 0 || c.Instances > 64 || c.Objects < 0 || c.Objects > 64:
		return fmt.Errorf("%w: Instances %d and Objects %d must be in [0, 64]", ErrInvalidConfig, c.Instances, c.Objects)
	case c.PolygonPoints < 0 || c.PolygonPoints > 1000:
		return fmt.Errorf("%w: PolygonPoints %d outside [0, 1000]", ErrInvalidConfig, c.PolygonPoints)
	case c.ImagePool < 0:
		return fmt.Errorf("%w: ImagePool %d < 0", ErrInvalidConfig, c.ImagePool)
	case c.Workers < 0:
		return fmt.Errorf("%w: Workers %d < 0", ErrInvalidConfig, c.Workers)
	}
	return nil
}

// ExportStats counts what Export wrote.
type ExportStats struct {
	COCOImages, VGImages, Shared int
	Captions, Instances          int // COCO annotations
	Regions, Objects             int // VG records
}

// Membership says which datasets image i belongs to.
type Membership int

// The three ways an image can be published.
const (
	InCOCO Membership = 1 << iota
	InVG
	InBoth = InCOCO | InVG
)

// Member returns the datasets image i of the world is published in: a pure
// function of (seed, i, Overlap, COCOShare).
func (c ExportConfig) Member(i int) Membership {
	u := float64(mix(c.World.Seed^0x5bd1e995^uint64(i)*0x2545f4914f6cdd1d)>>11) / (1 << 53)
	share := c.COCOShare
	if share == 0 {
		share = 0.5
	}
	switch {
	case u < c.Overlap:
		return InBoth
	case u < c.Overlap+(1-c.Overlap)*share:
		return InCOCO
	}
	return InVG
}

// Ids of image i and its annotations in the exported files. They are sparse
// and overlap numerically between the datasets (COCO id 7 and VG id 7 are
// different images), as in the real data.
func cocoImageID(i int) int     { return 3*i + 1 }
func vgImageID(i int) int       { return i + 1 }
func captionID(i, k int) int    { return 32*i + k + 1 }
func instanceID(i, k int) int   { return 64*i + k + 1 }
func vgObjectID(i, k int) int   { return 64*i + k + 1 }
func vgRegionID(i, k int) int   { return 1024*i + k + 1 }
func cocoCategoryID(c int) int  { return []int{1, 2, 4, 5, 7, 9}[c] }
func cocoFileName(i int) string { return fmt.Sprintf("%012d.jpg", cocoImageID(i)) }

// Export writes the world: COCO 2017 into cocoDir (annotations/
// captions_train2017.json, annotations/instances_train2017.json,
// train2017/%012d.jpg) and Visual Genome 1.4 into vgDir (image_data.json,
// region_descriptions.json, objects.json, attributes.json, VG_100K/<id>.jpg).
// Memory stays bounded whatever the image count: annotation arrays are
// streamed to disk as images are rendered.
func Export(cfg ExportConfig, cocoDir, vgDir string) (ExportStats, error) {
	if err := cfg.Validate(); err != nil {
		return ExportStats{}, err
	}
	cfg.World = cfg.World.WithDefaults()
	if cfg.Workers == 0 {
		cfg.Workers = 4
	}
	for _, d := range []string{filepath.Join(cocoDir, "annotations"), filepath.Join(cocoDir, "train2017"), filepath.Join(vgDir, "VG_100K")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return ExportStats{}, err
		}
	}
	w, err := newExportWriter(cocoDir, vgDir)
	if err != nil {
		return ExportStats{}, err
	}
	defer w.abort()
	pool := filepath.Join(vgDir, ".pool")
	if cfg.ImagePool > 0 {
		if err := os.MkdirAll(pool, 0o755); err != nil {
			return ExportStats{}, err
		}
	}

	const batch = 256
	pics := make([]Picture, batch)
	jpgs := make([][]byte, batch)
	errs := make([]error, batch)
	for start := 0; start < cfg.World.Images; start += batch {
		n := min(batch, cfg.World.Images-start)
		var wg sync.WaitGroup
		next := make(chan int)
		for g := 0; g < cfg.Workers; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := range next {
					i := start + k
					pics[k] = Scene(cfg.World, i)
					jpgs[k], errs[k] = nil, nil
					if cfg.ImagePool == 0 || i < cfg.ImagePool {
						jpgs[k], errs[k] = EncodeJPEG(pics[k].Image)
					}
				}
			}()
		}
		for k := 0; k < n; k++ {
			next <- k
		}
		close(next)
		wg.Wait()
		for k := 0; k < n; k++ {
			if errs[k] != nil {
				return ExportStats{}, errs[k]
			}
			i := start + k
			m := cfg.Member(i)
			if err := writeImageFiles(cfg, m, i, jpgs[k], cocoDir, vgDir, pool); err != nil {
				return ExportStats{}, err
			}
			if err := w.add(cfg, m, pics[k]); err != nil {
				return ExportStats{}, err
			}
		}
	}
	return w.finish()
}

// writeImageFiles writes (or links) image i's JPEG where its datasets keep it.
func writeImageFiles(cfg ExportConfig, m Membership, i int, jpg []byte, cocoDir, vgDir, pool string) error {
	var paths []string
	if m&InCOCO != 0 {
		paths = append(paths, filepath.Join(cocoDir, "train2017", cocoFileName(i)))
	}
	if m&InVG != 0 {
		paths = append(paths, filepath.Join(vgDir, "VG_100K", fmt.Sprintf("%d.jpg", vgImageID(i))))
	}
	src := ""
	if cfg.ImagePool > 0 {
		src = filepath.Join(pool, fmt.Sprintf("%d.jpg", i%cfg.ImagePool))
		if jpg != nil {
			if err := os.WriteFile(src, jpg, 0o644); err != nil {
				return err
			}
		}
	}
	for _, p := range paths {
		if src == "" {
			if err := os.WriteFile(p, jpg, 0o644); err != nil {
				return err
			}
			src = p
			continue
		}
		os.Remove(p)
		if err := os.Link(src, p); err != nil {
			return fmt.Errorf("synth: linking %s: %w", p, err)
		}
	}
	return nil
}

// jsonArray streams the elements of one JSON array to a file.
type jsonArray struct {
	f     *os.File
	w     *bufio.Writer
	first bool
}

func createArray(path, prefix string) (*jsonArray, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	a := &jsonArray{f: f, w: bufio.NewWriterSize(f, 1<<20), first: true}
	_, err = a.w.WriteString(prefix + "[")
	return a, err
}

func (a *jsonArray) add(v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if !a.first {
		a.w.WriteByte(',')
	}
	a.first = false
	_, err = a.w.Write(data)
	return err
}

// close ends the array, appends suffix and closes the file.
func (a *jsonArray) close(suffix string) error {
	a.w.WriteString("]" + suffix)
	if err := a.w.Flush(); err != nil {
		a.f.Close()
		return err
	}
	return a.f.Close()
}

// appendFile copies src's content onto w and removes src.
func appendFile(w io.Writer, src string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer os.Remove(src)
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}

func boxXYWH(b image.Rectangle) [4]float64 {
	return [4]float64{float64(b.Min.X), float64(b.Min.Y), float64(b.Dx()), float64(b.Dy())}
}

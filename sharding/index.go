package sharding

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// Input records, as the real files spell them (older VG releases spell a
// few keys differently; both are accepted).
type (
	cocoImage struct {
		ID       uint64 `json:"id"`
		FileName string `json:"file_name"`
		Width    int    `json:"width"`
		Height   int    `json:"height"`
	}
	cocoCaption struct {
		ID      uint64 `json:"id"`
		ImageID uint64 `json:"image_id"`
		Caption string `json:"caption"`
	}
	cocoInstance struct {
		ID         uint64    `json:"id"`
		ImageID    uint64    `json:"image_id"`
		CategoryID int       `json:"category_id"`
		BBox       []float64 `json:"bbox"`
		IsCrowd    int       `json:"iscrowd"`
	}
	cocoCategory struct {
		ID   int    `json:"id"`
		Name string `json:"name"`
	}
	vgImage struct {
		ImageID uint64  `json:"image_id"`
		ID      uint64  `json:"id"` // VG 1.0
		Width   int     `json:"width"`
		Height  int     `json:"height"`
		URL     string  `json:"url"`
		CocoID  *uint64 `json:"coco_id"`
	}
	vgRegionImage struct {
		ID      uint64     `json:"id"`
		ImageID uint64     `json:"image_id"`
		Regions []vgRegion `json:"regions"`
	}
	vgRegion struct {
		RegionID uint64  `json:"region_id"`
		X        float64 `json:"x"`
		Y        float64 `json:"y"`
		Width    float64 `json:"width"`
		Height   float64 `json:"height"`
		Phrase   string  `json:"phrase"`
	}
	vgObjectImage struct {
		ImageID    uint64     `json:"image_id"`
		ID         uint64     `json:"id"`
		Objects    []vgObject `json:"objects"`
		Attributes []vgObject `json:"attributes"` // attributes.json
	}
	vgObject struct {
		ObjectID   uint64   `json:"object_id"`
		ID         uint64   `json:"id"` // VG 1.0
		X          float64  `json:"x"`
		Y          float64  `json:"y"`
		W          float64  `json:"w"`
		H          float64  `json:"h"`
		Names      []string `json:"names"`
		Name       string   `json:"name"` // VG 1.0
		Attributes []string `json:"attributes"`
	}
)

// Spooled records: what the shard writers need, names already normalised.
type (
	capRec struct {
		ID   uint64
		Text string
	}
	instRec struct {
		ID    uint64
		Cat   int
		Box   [4]float64 // x, y, w, h in pixels
		Crowd bool
	}
	regRec struct {
		ID   uint64
		Box  [4]float64
		Text string
	}
	objRec struct {
		ID    uint64
		Box   [4]float64
		Names []string
	}
	attrRec struct {
		ID    uint64
		Attrs []string
	}
)

// index is what the streaming pass learns: the image lists (in memory,
// small), the annotations (spooled to disk), and the name counts.
type index struct {
	coco       map[uint64]cocoImage
	vg         map[uint64]vgImage
	categories []cocoCategory
	caps       *spool
	insts      *spool
	regions    *spool
	objects    *spool
	attrs      *spool
	names      counter
	attrNames  counter
	inputs     []string // "path size mtime" of every file read, for resume fingerprints
}

func (ix *index) close() {
	for _, s := range []*spool{ix.caps, ix.insts, ix.regions, ix.objects, ix.attrs} {
		s.close()
	}
}

// indexer streams the annotation files into an index.
//
// Files are independent, so they are streamed in parallel (run); each task
// writes only its own fields, and whatever several tasks share (the input
// list, the report) is locked.
type indexer struct {
	ix       *index
	rep      *Report
	tmp      string
	progress io.Writer
	strict   bool

	mu         sync.Mutex
	cocoImages [2]map[uint64]cocoImage // from the captions file, the instances file
}

// run runs the tasks, at most limit at a time, and returns the error of
// the first task (in argument order) that failed.
func run(limit int, tasks ...func() error) error {
	errs := make([]error, len(tasks))
	sem := make(chan struct{}, max(1, limit))
	var wg sync.WaitGroup
	for i, task := range tasks {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = task()
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// index streams the COCO files and the VG files, up to limit at once.
func (d *indexer) index(cocoDir, vgDir string, limit int) error {
	var tasks []func() error
	if cocoDir != "" {
		ann := filepath.Join(cocoDir, "annotations")
		tasks = append(tasks,
			func() error { return d.cocoFile(filepath.Join(ann, "captions_train2017.json"), true) },
			func() error { return d.cocoFile(filepath.Join(ann, "instances_train2017.json"), false) })
	}
	if vgDir != "" {
		// The image list first (it is small): without it nothing of VG is usable.
		ok, err := d.vgImages(vgDir)
		if err != nil {
			return err
		}
		if ok {
			tasks = append(tasks,
				func() error { return d.vgRegions(vgDir) },
				func() error { return d.vgObjects(vgDir) },
				func() error { return d.vgAttributes(vgDir) })
		}
	}
	if err := run(limit, tasks...); err != nil {
		return err
	}
	// Merge the COCO image lists in a fixed order: the captions file wins.
	for _, images := range d.cocoImages {
		for id, im := range images {
			if _, dup := d.ix.coco[id]; !dup {
				d.ix.coco[id] = im
			}
		}
	}
	sort.Strings(d.ix.inputs)
	return nil
}

// file streams one annotation file. walk reads it; a malformed file is
// left out entirely (its spool and images discarded by the caller through
// the returned error), and is fatal when strict.
func (d *indexer) file(path string, optional bool, walk func(j *jsonFile) error) (bool, error) {
	start := time.Now()
	st, err := os.Stat(path)
	if err != nil {
		if !optional {
			msg := fmt.Sprintf("%s: %v", path, err)
			if d.strict {
				return false, fmt.Errorf("sharding: %s", msg)
			}
			d.rep.fileError(SkipFileMissing, msg)
		}
		return false, nil
	}
	d.mu.Lock()
	d.ix.inputs = append(d.ix.inputs, fmt.Sprintf("%s %d %d", path, st.Size(), st.ModTime().UnixNano()))
	d.mu.Unlock()
	j, err := openJSON(path)
	if err != nil {
		return false, err
	}
	defer j.Close()
	j.badRecord = func(off int64, err error) {
		d.rep.skip(SkipRecordMalformed, 1, fmt.Sprintf("%s: byte %d: %v", filepath.Base(path), off, err))
	}
	if err := walk(j); err != nil {
		if d.strict {
			return false, err
		}
		d.rep.fileError(SkipFileMalformed, err.Error()+" (file left out)")
		if d.progress != nil {
			fmt.Fprintf(d.progress, "index %s: MALFORMED, left out: %v\n", path, err)
		}
		return false, nil
	}
	if d.progress != nil {
		fmt.Fprintf(d.progress, "index %s: %.1f MB in %.1fs\n", path, float64(st.Size())/1e6, time.Since(start).Seconds())
	}
	return true, nil
}

// newTmpSpool creates a spool in the indexer's scratch directory.
func (d *indexer) newTmpSpool(name string) (*spool, error) {
	return newSpool(filepath.Join(d.tmp, name))
}

// cocoFile indexes a COCO annotation file: its images, its annotations into
// a spool (captions or instances), and its categories.
func (d *indexer) cocoFile(path string, captions bool) error {
	name := "instances.spool"
	if captions {
		name = "captions.spool"
	}
	sp, err := d.newTmpSpool(name)
	if err != nil {
		return err
	}
	images := map[uint64]cocoImage{}
	var cats []cocoCategory
	ok, err := d.file(path, false, func(j *jsonFile) error {
		return j.object(map[string]func() error{
			"images": func() error {
				return array(j, func(im *cocoImage, off int64) error {
					images[im.ID] = *im
					return nil
				})
			},
			"categories": func() error {
				return array(j, func(c *cocoCategory, off int64) error {
					cats = append(cats, *c)
					return nil
				})
			},
			"annotations": func() error {
				if captions {
					return array(j, func(a *cocoCaption, off int64) error {
						return sp.put(a.ImageID, 1, capRec{ID: a.ID, Text: a.Caption})
					})
				}
				return array(j, func(a *cocoInstance, off int64) error {
					if len(a.BBox) != 4 {
						d.rep.skip(SkipRecordMalformed, 1, fmt.Sprintf("%s: byte %d: bbox has %d numbers", filepath.Base(path), off, len(a.BBox)))
						return nil
					}
					return sp.put(a.ImageID, 1, instRec{ID: a.ID, Cat: a.CategoryID, Box: [4]float64(a.BBox), Crowd: a.IsCrowd != 0})
				})
			},
		})
	})
	if err != nil || !ok {
		sp.close()
		return err
	}
	if err := sp.seal(); err != nil {
		return err
	}
	if captions {
		d.cocoImages[0] = images
		d.ix.caps = sp
	} else {
		d.cocoImages[1] = images
		d.ix.insts = sp
		d.ix.categories = cats
	}
	return nil
}

// vgImages indexes image_data.json; ok is false when it is unusable.
func (d *indexer) vgImages(dir string) (bool, error) {
	images := map[uint64]vgImage{}
	ok, err := d.file(filepath.Join(dir, "image_data.json"), false, func(j *jsonFile) error {
		return array(j, func(im *vgImage, off int64) error {
			if im.ImageID == 0 {
				im.ImageID = im.ID
			}
			if _, dup := images[im.ImageID]; dup {
				d.rep.skip(SkipImageDuplicate, 1, fmt.Sprintf("image_data.json: byte %d: VG image %d", off, im.ImageID))
				return nil
			}
			images[im.ImageID] = *im
			return nil
		})
	})
	if err != nil || !ok {
		return false, err
	}
	d.ix.vg = images
	return true, nil
}

// vgRegions indexes region_descriptions.json.
func (d *indexer) vgRegions(dir string) error {
	regions, err := d.newTmpSpool("regions.spool")
	if err != nil {
		return err
	}
	ok, err := d.file(filepath.Join(dir, "region_descriptions.json"), false, func(j *jsonFile) error {
		return array(j, func(ri *vgRegionImage, off int64) error {
			id := ri.ID
			if id == 0 {
				id = ri.ImageID
			}
			recs := make([]regRec, len(ri.Regions))
			for k, r := range ri.Regions {
				recs[k] = regRec{ID: r.RegionID, Box: [4]float64{r.X, r.Y, r.Width, r.Height}, Text: r.Phrase}
			}
			return regions.put(id, len(recs), recs)
		})
	})
	return d.keep(&d.ix.regions, regions, ok, err)
}

// vgObjects indexes objects.json and counts the object names.
func (d *indexer) vgObjects(dir string) error {
	objects, err := d.newTmpSpool("objects.spool")
	if err != nil {
		return err
	}
	names := counter{}
	ok, err := d.file(filepath.Join(dir, "objects.json"), true, func(j *jsonFile) error {
		return array(j, func(oi *vgObjectImage, off int64) error {
			id := oi.ImageID
			if id == 0 {
				id = oi.ID
			}
			recs := make([]objRec, len(oi.Objects))
			for k, o := range oi.Objects {
				recs[k] = objRec{ID: objectID(o), Box: [4]float64{o.X, o.Y, o.W, o.H}, Names: normNames(o)}
				for _, n := range recs[k].Names {
					names[n]++
				}
			}
			return objects.put(id, len(recs), recs)
		})
	})
	if err := d.keep(&d.ix.objects, objects, ok, err); err != nil {
		return err
	}
	if ok {
		d.ix.names = names
	}
	return nil
}

// vgAttributes indexes attributes.json and counts the attributes.
func (d *indexer) vgAttributes(dir string) error {
	attrs, err := d.newTmpSpool("attributes.spool")
	if err != nil {
		return err
	}
	attrNames := counter{}
	ok, err := d.file(filepath.Join(dir, "attributes.json"), true, func(j *jsonFile) error {
		return array(j, func(ai *vgObjectImage, off int64) error {
			id := ai.ImageID
			if id == 0 {
				id = ai.ID
			}
			var recs []attrRec
			for _, o := range ai.Attributes {
				r := attrRec{ID: objectID(o)}
				seen := map[string]bool{}
				for _, a := range o.Attributes {
					if n := NormalizeAttribute(a); n != "" && !seen[n] {
						seen[n] = true
						r.Attrs = append(r.Attrs, n)
						attrNames[n]++
					}
				}
				if len(r.Attrs) > 0 {
					recs = append(recs, r)
				}
			}
			return attrs.put(id, 0, recs)
		})
	})
	if err := d.keep(&d.ix.attrs, attrs, ok, err); err != nil {
		return err
	}
	if ok {
		d.ix.attrNames = attrNames
	}
	return nil
}

// keep installs a finished spool, or discards it if its file was left out.
func (d *indexer) keep(dst **spool, sp *spool, ok bool, err error) error {
	if err != nil || !ok {
		sp.close()
		return err
	}
	if err := sp.seal(); err != nil {
		return err
	}
	*dst = sp
	return nil
}

func objectID(o vgObject) uint64 {
	if o.ObjectID != 0 {
		return o.ObjectID
	}
	return o.ID
}

func normNames(o vgObject) []string {
	names := o.Names
	if len(names) == 0 && o.Name != "" {
		names = []string{o.Name}
	}
	var out []string
	for _, n := range names {
		if v := NormalizeName(n); v != "" {
			out = append(out, v)
		}
	}
	return out
}

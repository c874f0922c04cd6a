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

// index is what the streaming pass learns: the image lists (in memory,
// small), the annotations (spooled to disk), the categories and the name
// counts.
type index struct {
	coco         map[uint64]cocoImage
	vg           map[uint64]vgImage
	cocoConflict map[uint64]bool // COCO image ids listed with different content: no image
	vgConflict   map[uint64]bool
	categories   []category
	catConflict  map[int]bool // category ids listed with different names
	caps         *spool
	insts        *spool
	regions      *spool
	objects      *spool
	attrs        *spool
	names        counter
	inputs       []string // "path size mtime" of every file read, for resume fingerprints
}

func newIndex() *index {
	return &index{coco: map[uint64]cocoImage{}, vg: map[uint64]vgImage{}, cocoConflict: map[uint64]bool{},
		vgConflict: map[uint64]bool{}, catConflict: map[int]bool{}, names: counter{}}
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
	maxText  int
	maxRec   int

	mu         sync.Mutex
	cocoImages [2]*imageList[cocoImage] // from the captions file, the instances file
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

// VG files that need image_data.json, and whether each is optional.
var vgAnnotationFiles = []struct {
	name     string
	optional bool
}{{"region_descriptions.json", false}, {"objects.json", true}, {"attributes.json", true}}

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
		} else {
			// Say so for each file that is there: nothing in it can be placed.
			for _, f := range vgAnnotationFiles {
				path := filepath.Join(vgDir, f.name)
				if _, err := os.Stat(path); err == nil {
					d.rep.fileError(SkipFileNotRead, path+": not read: image_data.json is unusable, so no VG annotation can be placed")
				} else if !f.optional {
					d.rep.fileError(SkipFileMissing, fmt.Sprintf("%s: %v", path, err))
				}
			}
		}
	}
	if err := run(limit, tasks...); err != nil {
		return err
	}
	d.mergeCOCOImages()
	sort.Strings(d.ix.inputs)
	return nil
}

// file streams one annotation file. walk reads it, counting into fr (the
// file's own report, merged when the file is usable); a malformed file is
// left out entirely (its spool discarded by the caller when ok is false),
// every item read from it counted as file_malformed; it is fatal when
// strict.
func (d *indexer) file(path string, optional bool, walk func(j *jsonFile, fr *Report) error) (bool, error) {
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
	j, err := openJSON(path, d.maxRec)
	if err != nil {
		return false, err
	}
	defer j.Close()
	fr := newReport()
	if err := walk(j, fr); err != nil {
		if d.strict {
			return false, err
		}
		d.rep.fileError(SkipFileMalformed, err.Error()+" (file left out)")
		for u, t := range fr.Units {
			d.rep.readSkip(u, SkipFileMalformed, t.Read, filepath.Base(path)+" left out")
		}
		if d.progress != nil {
			fmt.Fprintf(d.progress, "index %s: MALFORMED, left out: %v\n", path, err)
		}
		return false, nil
	}
	d.rep.read(UnitFile, 1)
	d.rep.kept(UnitFile, 1)
	d.rep.merge(fr)
	if d.progress != nil {
		fmt.Fprintf(d.progress, "index %s: %.1f MB in %.1fs\n", path, float64(st.Size())/1e6, time.Since(start).Seconds())
	}
	return true, nil
}

// where names an element for the report: file and byte offset.
func where(path string, e element) place { return place{filepath.Base(path), e.off} }

// tooLarge counts an element over the record limit as one item of u.
func (d *indexer) tooLarge(fr *Report, u, path string, e element) {
	fr.readSkip(u, SkipRecordTooLarge, 1, fmt.Sprintf("%s%d bytes, more than the %d-byte record limit", where(path, e), e.size, d.maxRec))
}

// newTmpSpool creates a spool in the indexer's scratch directory.
func (d *indexer) newTmpSpool(name, unit string) (*spool, error) {
	return newSpool(filepath.Join(d.tmp, name), unit)
}

// cocoFile indexes a COCO annotation file: its images, its annotations into
// a spool (captions or instances), and its categories.
func (d *indexer) cocoFile(path string, captions bool) error {
	name, unit := "instances.spool", UnitInstance
	if captions {
		name, unit = "captions.spool", UnitCaption
	}
	sp, err := d.newTmpSpool(name, unit)
	if err != nil {
		return err
	}
	images := newImageList[cocoImage]()
	cats := newCategoryList()
	decodedCats := int64(0) // counted by cats.resolve, or here if the file is left out
	ok, err := d.file(path, false, func(j *jsonFile, fr *Report) error {
		return j.object(map[string]func() error{
			"images": func() error {
				return j.array(func(e element) error {
					if e.tooLarge {
						d.tooLarge(fr, UnitImage, path, e)
						return nil
					}
					im, err := decodeCOCOImage(e.raw)
					if err != nil {
						fr.readSkip(UnitImage, SkipRecordMalformed, 1, where(path, e).String()+err.Error())
						return nil
					}
					images.add(im.ID, im)
					return nil
				})
			},
			"categories": func() error {
				return j.array(func(e element) error {
					if e.tooLarge {
						d.tooLarge(fr, UnitCategory, path, e)
						return nil
					}
					id, name, def, err := decodeCOCOCategory(e.raw, d.maxText, where(path, e))
					if err != nil {
						fr.readSkip(UnitCategory, SkipRecordMalformed, 1, where(path, e).String()+err.Error())
						return nil
					}
					decodedCats++
					cats.add(id, name, def)
					return nil
				})
			},
			"annotations": func() error {
				return j.array(func(e element) error {
					if e.tooLarge {
						d.tooLarge(fr, unit, path, e)
						return nil
					}
					var imageID, id uint64
					var rec any
					var err error
					if captions {
						var r capRec
						imageID, r, err = decodeCOCOCaption(e.raw, d.maxText, where(path, e))
						id, rec = r.ID, r
					} else {
						var r instRec
						imageID, r, err = decodeCOCOInstance(e.raw)
						id, rec = r.ID, r
					}
					if err != nil {
						fr.readSkip(unit, SkipRecordMalformed, 1, where(path, e).String()+err.Error())
						return nil
					}
					fr.read(unit, 1)
					sp.noteID(id)
					return sp.put(imageID, 1, rec)
				})
			},
		})
	})
	if err != nil || !ok {
		sp.close()
		d.rep.readSkip(UnitCategory, SkipFileMalformed, decodedCats, filepath.Base(path)+" left out")
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
		d.ix.categories = cats.resolve(d.rep, d.ix.catConflict)
	}
	return nil
}

// vgImages indexes image_data.json; ok is false when it is unusable.
func (d *indexer) vgImages(dir string) (bool, error) {
	path := filepath.Join(dir, "image_data.json")
	images := newImageList[vgImageKey]()
	first := map[uint64]vgImage{}
	decoded := int64(0)
	ok, err := d.file(path, false, func(j *jsonFile, fr *Report) error {
		return j.topArray(func(e element) error {
			if e.tooLarge {
				d.tooLarge(fr, UnitImage, path, e)
				return nil
			}
			im, err := decodeVGImage(e.raw)
			if err != nil {
				fr.readSkip(UnitImage, SkipRecordMalformed, 1, where(path, e).String()+err.Error())
				return nil
			}
			decoded++
			images.add(im.ImageID, im.key())
			if _, seen := first[im.ImageID]; !seen {
				first[im.ImageID] = im
			}
			return nil
		})
	})
	if err != nil {
		return false, err
	}
	if !ok {
		d.rep.readSkip(UnitImage, SkipFileMalformed, decoded, "image_data.json left out")
		return false, nil
	}
	kept := resolveImages(d.rep, images, d.ix.vgConflict, "VG")
	d.ix.vg = make(map[uint64]vgImage, len(kept))
	for id := range kept {
		d.ix.vg[id] = first[id]
	}
	return true, nil
}

// vgFile streams one per-image VG file: decode turns an element into the
// records put in the spool (n items) and the items of the wrong shape.
func vgFile[R any](d *indexer, dir, name, unit string, optional bool, dst **spool,
	decode func(raw []byte, maxText int, at place) (uint64, []R, []badItem, error),
	note func(sp *spool, r *R) (items int)) (bool, error) {
	sp, err := d.newTmpSpool(name+".spool", unit)
	if err != nil {
		return false, err
	}
	path := filepath.Join(dir, name)
	ok, err := d.file(path, optional, func(j *jsonFile, fr *Report) error {
		return j.topArray(func(e element) error {
			if e.tooLarge {
				d.tooLarge(fr, unit, path, e)
				return nil
			}
			imageID, recs, bad, err := decode(e.raw, d.maxText, where(path, e))
			if err != nil {
				fr.readSkip(unit, SkipRecordMalformed, 1, where(path, e).String()+err.Error())
				return nil
			}
			for _, b := range bad {
				fr.readSkip(unit, SkipRecordMalformed, int64(b.n), where(path, e).String()+b.msg)
			}
			items := 0
			for i := range recs {
				items += note(sp, &recs[i])
			}
			if len(recs) == 0 {
				return nil
			}
			fr.read(unit, int64(items))
			return sp.put(imageID, items, recs)
		})
	})
	if err != nil || !ok {
		sp.close()
		return ok, err
	}
	if err := sp.seal(); err != nil {
		return false, err
	}
	*dst = sp
	return true, nil
}

// vgRegions indexes region_descriptions.json.
func (d *indexer) vgRegions(dir string) error {
	_, err := vgFile(d, dir, "region_descriptions.json", UnitRegion, false, &d.ix.regions, decodeVGRegions,
		func(sp *spool, r *regRec) int { sp.noteID(r.ID); return 1 })
	return err
}

// vgObjects indexes objects.json and counts the object names.
func (d *indexer) vgObjects(dir string) error {
	names := counter{}
	ok, err := vgFile(d, dir, "objects.json", UnitObject, true, &d.ix.objects, decodeVGObjects,
		func(sp *spool, r *objRec) int {
			sp.noteID(r.ID)
			for _, n := range r.Names {
				names[n]++
			}
			return 1
		})
	if ok {
		d.ix.names = names
	}
	return err
}

// vgAttributes indexes attributes.json.
func (d *indexer) vgAttributes(dir string) error {
	_, err := vgFile(d, dir, "attributes.json", UnitAttribute, true, &d.ix.attrs, decodeVGAttributes,
		func(sp *spool, r *attrRec) int { sp.noteID(r.ID); return r.items() })
	return err
}

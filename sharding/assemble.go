package sharding

import (
	"bytes"
	"fmt"
	"image/jpeg"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// candidate is one image the import tries to turn into a sample.
type candidate struct {
	cocoID, vgID    uint64
	inCOCO, inVG    bool
	imageID         uint64 // dataset-wide (ids.go)
	annW, annH      int    // annotated size
	cocoFile, vgURL string
}

// assembler turns candidates into samples; safe for concurrent use.
type assembler struct {
	cfg     BuildConfig
	ix      *index
	classes map[string]int
	attrs   map[string]int
	catMap  map[int]int // COCO category id → class
}

// assemble returns the sample of c and its JPEG, or nil when the image is
// skipped; every left-out part is counted in rep.
func (a *assembler) assemble(c candidate, rep *Report) (*SampleMeta, []byte, error) {
	key := SampleKey(c.imageID)
	drop := func(reason string) {
		rep.skip(reason, 1, key)
	}
	jpg, err := a.readImage(c)
	if err != nil {
		drop(SkipImageMissing)
		return nil, nil, nil
	}
	img, err := jpeg.Decode(bytes.NewReader(jpg))
	if err != nil {
		rep.skip(SkipImageCorrupt, 1, key+": "+err.Error())
		return nil, nil, nil
	}
	b := img.Bounds()
	meta := &SampleMeta{Key: key, ImageID: c.imageID, Width: b.Dx(), Height: b.Dy(), Texts: []Text{}, Objects: []Object{}}
	switch {
	case c.inCOCO && c.inVG:
		meta.Source, meta.CocoID, meta.VGID = "coco+vg", c.cocoID, c.vgID
	case c.inCOCO:
		meta.Source, meta.CocoID = "coco", c.cocoID
	default:
		meta.Source, meta.VGID = "vg", c.vgID
	}
	W, H := c.annW, c.annH
	if W <= 0 || H <= 0 {
		W, H = b.Dx(), b.Dy()
	}
	if W != b.Dx() || H != b.Dy() {
		rep.mu.Lock()
		rep.SizeMismatch++
		rep.mu.Unlock()
	}
	box := func(xywh [4]float64) ([4]float32, bool) {
		nb, clipped, ok := normBox(xywh, W, H)
		if !ok {
			rep.skip(SkipBoxOutside, 1, key)
		} else if clipped {
			rep.mu.Lock()
			rep.Clipped++
			rep.mu.Unlock()
		}
		return nb, ok
	}
	seen := map[uint64]bool{}
	addText := func(space int, id uint64, kind, text string, b *[4]float32) {
		text = strings.Join(strings.Fields(text), " ")
		if text == "" {
			rep.skip(SkipTextEmpty, 1, fmt.Sprintf("%s %s %d", key, kind, id))
			return
		}
		pid, err := MakeID(space, id)
		if err != nil {
			rep.skip(SkipRecordMalformed, 1, fmt.Sprintf("%s %s id %d: %v", key, kind, id, err))
			return
		}
		if seen[pid] {
			rep.skip(SkipTextDuplicate, 1, fmt.Sprintf("%s %s %d", key, kind, id))
			return
		}
		seen[pid] = true
		meta.Texts = append(meta.Texts, Text{PairID: pid, Kind: kind, Text: text, Box: b})
	}

	var cocoObjs int
	if c.inCOCO {
		var caps []capRec
		if err := get(a.ix.caps, c.cocoID, func(r *capRec) { caps = append(caps, *r) }); err != nil {
			return nil, nil, err
		}
		sort.SliceStable(caps, func(i, j int) bool { return caps[i].ID < caps[j].ID })
		for _, r := range caps {
			addText(IDSpaceCOCO, r.ID, "caption", r.Text, nil)
		}
		var insts []instRec
		if err := get(a.ix.insts, c.cocoID, func(r *instRec) { insts = append(insts, *r) }); err != nil {
			return nil, nil, err
		}
		sort.SliceStable(insts, func(i, j int) bool { return insts[i].ID < insts[j].ID })
		for _, r := range insts {
			cls, ok := a.catMap[r.Cat]
			switch {
			case r.Crowd:
				rep.skip(SkipObjectCrowd, 1, key)
			case !ok:
				rep.skip(SkipObjectCategory, 1, fmt.Sprintf("%s category %d", key, r.Cat))
			default:
				if nb, ok := box(r.Box); ok {
					meta.Objects = append(meta.Objects, Object{Box: nb, Class: cls})
				}
			}
		}
		cocoObjs = len(meta.Objects)
	}
	if c.inVG {
		var regs []regRec
		if err := get(a.ix.regions, c.vgID, func(r *[]regRec) { regs = append(regs, *r...) }); err != nil {
			return nil, nil, err
		}
		sort.SliceStable(regs, func(i, j int) bool { return regs[i].ID < regs[j].ID })
		for _, r := range regs {
			if nb, ok := box(r.Box); ok {
				addText(IDSpaceVG, r.ID, "region", r.Text, &nb)
			}
		}
		attrsOf := map[uint64][]string{}
		if err := get(a.ix.attrs, c.vgID, func(rs *[]attrRec) {
			for _, r := range *rs {
				attrsOf[r.ID] = append(attrsOf[r.ID], r.Attrs...)
			}
		}); err != nil {
			return nil, nil, err
		}
		var objs []objRec
		if err := get(a.ix.objects, c.vgID, func(r *[]objRec) { objs = append(objs, *r...) }); err != nil {
			return nil, nil, err
		}
		sort.SliceStable(objs, func(i, j int) bool { return objs[i].ID < objs[j].ID })
		for _, o := range objs {
			cls := -1
			for _, n := range o.Names {
				if k, ok := a.classes[n]; ok {
					cls = k
					break
				}
			}
			if cls < 0 {
				rep.skip(SkipObjectOutOfVocab, 1, fmt.Sprintf("%s %q", key, strings.Join(o.Names, "/")))
				continue
			}
			nb, ok := box(o.Box)
			if !ok {
				continue
			}
			var attrs []int
			for _, s := range attrsOf[o.ID] {
				if k, ok := a.attrs[s]; ok {
					attrs = appendUnique(attrs, k)
				} else {
					rep.skip(SkipAttributeOutOfVocab, 1, "")
				}
			}
			obj := Object{Box: nb, Class: cls, Attributes: attrs}
			if m := matchObject(meta.Objects[:cocoObjs], obj); m >= 0 {
				for _, k := range attrs {
					meta.Objects[m].Attributes = appendUnique(meta.Objects[m].Attributes, k)
				}
				rep.mu.Lock()
				rep.Merged++
				rep.mu.Unlock()
				continue
			}
			meta.Objects = append(meta.Objects, obj)
		}
	}
	if len(meta.Texts) == 0 {
		drop(SkipImageNoText)
		return nil, nil, nil
	}
	return meta, jpg, nil
}

// readImage finds and reads the image file: the COCO copy first, then VG's
// VG_100K/<id>.jpg, VG_100K_2/<id>.jpg, or the folder and name of its url.
func (a *assembler) readImage(c candidate) ([]byte, error) {
	var paths []string
	if c.inCOCO {
		paths = append(paths, filepath.Join(a.cfg.COCODir, a.cfg.COCOImages, filepath.Base(c.cocoFile)))
	}
	if c.inVG {
		name := fmt.Sprintf("%d.jpg", c.vgID)
		paths = append(paths, filepath.Join(a.cfg.VGDir, "VG_100K", name), filepath.Join(a.cfg.VGDir, "VG_100K_2", name))
		if c.vgURL != "" {
			u := strings.Split(c.vgURL, "/")
			if len(u) >= 2 {
				paths = append(paths, filepath.Join(a.cfg.VGDir, filepath.Base(u[len(u)-2]), filepath.Base(u[len(u)-1])))
			}
		}
	}
	var err error
	for _, p := range paths {
		var data []byte
		if data, err = os.ReadFile(p); err == nil {
			return data, nil
		}
	}
	return nil, err
}

// normBox clips an (x, y, w, h) pixel box to the W x H image and returns it
// normalised as (cx, cy, w, h). ok is false when nothing of at least one
// pixel in each direction is left (or a number is not finite).
func normBox(b [4]float64, W, H int) (out [4]float32, clipped, ok bool) {
	for _, v := range b {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return out, false, false
		}
	}
	x0, y0 := math.Max(0, b[0]), math.Max(0, b[1])
	x1, y1 := math.Min(float64(W), b[0]+b[2]), math.Min(float64(H), b[1]+b[3])
	if x1-x0 < 1 || y1-y0 < 1 {
		return out, false, false
	}
	clipped = x0 != b[0] || y0 != b[1] || x1 != b[0]+b[2] || y1 != b[1]+b[3]
	fw, fh := float64(W), float64(H)
	return [4]float32{float32((x0 + x1) / 2 / fw), float32((y0 + y1) / 2 / fh), float32((x1 - x0) / fw), float32((y1 - y0) / fh)}, clipped, true
}

// matchObject returns the index of an object of the same class with IoU
// at least 0.7, or -1: a VG object that duplicates a COCO one.
func matchObject(objs []Object, o Object) int {
	for i, p := range objs {
		if p.Class == o.Class && iou(p.Box, o.Box) >= 0.7 {
			return i
		}
	}
	return -1
}

func iou(a, b [4]float32) float64 {
	ax0, ay0, ax1, ay1 := a[0]-a[2]/2, a[1]-a[3]/2, a[0]+a[2]/2, a[1]+a[3]/2
	bx0, by0, bx1, by1 := b[0]-b[2]/2, b[1]-b[3]/2, b[0]+b[2]/2, b[1]+b[3]/2
	iw := math.Max(0, float64(min(ax1, bx1)-max(ax0, bx0)))
	ih := math.Max(0, float64(min(ay1, by1)-max(ay0, by0)))
	inter := iw * ih
	union := float64(a[2]*a[3]+b[2]*b[3]) - inter
	if union <= 0 {
		return 0
	}
	return inter / union
}

func appendUnique(s []int, k int) []int {
	for _, v := range s {
		if v == k {
			return s
		}
	}
	return append(s, k)
}

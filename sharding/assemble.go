package sharding

import (
	"fmt"
	"io"
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

// images is how many input images the candidate stands for (a COCO image
// with its VG twin is two).
func (c candidate) images() int64 {
	if c.inCOCO && c.inVG {
		return 2
	}
	return 1
}

// assembler turns candidates into samples; safe for concurrent use.
type assembler struct {
	cfg     BuildConfig
	ix      *index
	classes map[string]int
	attrs   map[string]int // set once the attribute vocabulary is known
	catMap  map[int]int    // COCO category id → class
	budget  *decodeBudget
}

// annotations are the spooled records of one candidate.
type annotations struct {
	caps  []capRec
	insts []instRec
	regs  []regRec
	objs  []objRec
	attrs []attrRec
}

func (a *assembler) load(c candidate) (*annotations, error) {
	an := &annotations{}
	if c.inCOCO {
		if err := get(a.ix.caps, c.cocoID, func(r *capRec) { an.caps = append(an.caps, *r) }); err != nil {
			return nil, err
		}
		if err := get(a.ix.insts, c.cocoID, func(r *instRec) { an.insts = append(an.insts, *r) }); err != nil {
			return nil, err
		}
	}
	if c.inVG {
		if err := get(a.ix.regions, c.vgID, func(r *[]regRec) { an.regs = append(an.regs, *r...) }); err != nil {
			return nil, err
		}
		if err := get(a.ix.objects, c.vgID, func(r *[]objRec) { an.objs = append(an.objs, *r...) }); err != nil {
			return nil, err
		}
		if err := get(a.ix.attrs, c.vgID, func(r *[]attrRec) { an.attrs = append(an.attrs, *r...) }); err != nil {
			return nil, err
		}
	}
	return an, nil
}

// counts returns the items of each unit.
func (an *annotations) counts() map[string]int64 {
	attrs := 0
	for _, e := range an.attrs {
		attrs += e.items()
	}
	return map[string]int64{UnitCaption: int64(len(an.caps)), UnitInstance: int64(len(an.insts)),
		UnitRegion: int64(len(an.regs)), UnitObject: int64(len(an.objs)), UnitAttribute: int64(attrs)}
}

// assemble returns the sample of c and its JPEG, or nil when the image is
// skipped. Every item of the candidate is counted in rep: kept, or skipped
// for one reason (an image left out takes all its annotations with it,
// under its own reason).
func (a *assembler) assemble(c candidate, rep *Report) (*SampleMeta, []byte, error) {
	key := SampleKey(c.imageID)
	an, err := a.load(c)
	if err != nil {
		return nil, nil, err
	}
	dropAll := func(reason string, n map[string]int64, example string) {
		rep.skip(UnitImage, reason, c.images(), example)
		for _, u := range units {
			rep.skip(u, reason, n[u], key)
		}
	}
	jpg, reason, err := a.readImageFile(c)
	if err != nil {
		dropAll(reason, an.counts(), key+": "+err.Error())
		return nil, nil, nil
	}
	bounds, reason, err := decodeJPEG(jpg, a.cfg.MaxImageSide, a.cfg.MaxImagePixels, a.budget)
	if err != nil {
		dropAll(reason, an.counts(), key+": "+err.Error())
		return nil, nil, nil
	}
	meta := &SampleMeta{Key: key, ImageID: c.imageID, Width: bounds.Dx(), Height: bounds.Dy(), Texts: []Text{}, Objects: []Object{}}
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
		W, H = bounds.Dx(), bounds.Dy()
	}
	if W != bounds.Dx() || H != bounds.Dy() {
		rep.addRepair(&rep.SizeMismatch)
	}
	kept := map[string]int64{}
	box := func(u string, id uint64, xywh [4]float64) ([4]float32, bool) {
		nb, clipped, ok := normBox(xywh, W, H)
		if !ok {
			rep.skip(u, SkipBoxOutside, 1, fmt.Sprintf("%s %s %d: box %v outside %d×%d", key, u, id, xywh, W, H))
		} else if clipped {
			rep.addRepair(&rep.Clipped)
		}
		return nb, ok
	}

	var cocoObjs int
	if c.inCOCO {
		sort.SliceStable(an.caps, func(i, j int) bool { return an.caps[i].ID < an.caps[j].ID })
		dups := dupCheck{s: a.ix.caps}
		for _, r := range an.caps {
			if d := dups.reason(r.ID); d != "" {
				rep.skip(UnitCaption, d, 1, fmt.Sprintf("%s caption %d", key, r.ID))
				continue
			}
			if r.Def != nil {
				rep.skip(UnitCaption, r.Def.Reason, 1, r.Def.Detail)
				continue
			}
			pid, _ := MakeID(IDSpaceCOCO, r.ID) // ids were checked when read
			meta.Texts = append(meta.Texts, Text{PairID: pid, Kind: "caption", Text: r.Text})
			kept[UnitCaption]++
		}
		sort.SliceStable(an.insts, func(i, j int) bool { return an.insts[i].ID < an.insts[j].ID })
		idups := dupCheck{s: a.ix.insts}
		for _, r := range an.insts {
			cls, ok := a.catMap[r.Cat]
			switch d := idups.reason(r.ID); {
			case d != "":
				rep.skip(UnitInstance, d, 1, fmt.Sprintf("%s instance %d", key, r.ID))
			case r.Crowd:
				rep.skip(UnitInstance, SkipObjectCrowd, 1, fmt.Sprintf("%s instance %d", key, r.ID))
			case !ok:
				why := "is not among the categories"
				if a.ix.catConflict[r.Cat] {
					why = "is listed with different names"
				}
				rep.skip(UnitInstance, SkipObjectCategory, 1, fmt.Sprintf("%s instance %d: category %d %s", key, r.ID, r.Cat, why))
			default:
				if nb, ok := box(UnitInstance, r.ID, r.Box); ok {
					meta.Objects = append(meta.Objects, Object{Box: nb, Class: cls})
					kept[UnitInstance]++
				}
			}
		}
		cocoObjs = len(meta.Objects)
	}
	if c.inVG {
		sort.SliceStable(an.regs, func(i, j int) bool { return an.regs[i].ID < an.regs[j].ID })
		dups := dupCheck{s: a.ix.regions}
		for _, r := range an.regs {
			if d := dups.reason(r.ID); d != "" {
				rep.skip(UnitRegion, d, 1, fmt.Sprintf("%s region %d", key, r.ID))
				continue
			}
			if r.Def != nil {
				rep.skip(UnitRegion, r.Def.Reason, 1, r.Def.Detail)
				continue
			}
			if nb, ok := box(UnitRegion, r.ID, r.Box); ok {
				pid, _ := MakeID(IDSpaceVG, r.ID)
				meta.Texts = append(meta.Texts, Text{PairID: pid, Kind: "region", Text: r.Text, Box: &nb})
				kept[UnitRegion]++
			}
		}
		for _, o := range a.resolveVG(key, an.objs, an.attrs, W, H, rep) {
			if o.skip != "" {
				continue
			}
			kept[UnitObject]++
			var attrs []int
			for _, n := range o.attrs {
				if k, ok := a.attrs[n]; ok {
					attrs = append(attrs, k)
					kept[UnitAttribute]++
				} else {
					rep.skip(UnitAttribute, SkipAttributeOutOfVocab, 1, fmt.Sprintf("%s object %d: attribute %q", key, o.rec.ID, n))
				}
			}
			obj := Object{Box: o.box, Class: o.class, Attributes: attrs}
			if m := matchObject(meta.Objects[:cocoObjs], obj); m >= 0 {
				for _, k := range attrs {
					if containsInt(meta.Objects[m].Attributes, k) {
						kept[UnitAttribute]--
						rep.skip(UnitAttribute, SkipDuplicate, 1, fmt.Sprintf("%s object %d: attribute %q already on the COCO object it merges into", key, o.rec.ID, a.attrName(k)))
						continue
					}
					meta.Objects[m].Attributes = append(meta.Objects[m].Attributes, k)
				}
				rep.addRepair(&rep.Merged)
				continue
			}
			meta.Objects = append(meta.Objects, obj)
		}
	}
	if len(meta.Texts) == 0 {
		dropAll(SkipImageNoText, kept, key)
		return nil, nil, nil
	}
	rep.kept(UnitImage, c.images())
	for u, n := range kept {
		rep.kept(u, n)
	}
	return meta, jpg, nil
}

func (a *assembler) attrName(k int) string {
	for n, i := range a.attrs {
		if i == k {
			return n
		}
	}
	return fmt.Sprint(k)
}

// imagePaths lists where the image file of c may be: the COCO copy first,
// then VG's VG_100K/<id>.jpg, VG_100K_2/<id>.jpg, or the folder and name
// of its url.
func (a *assembler) imagePaths(c candidate) []string {
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
	return paths
}

// readImageFile reads the first image file of c that exists, at most
// MaxImageBytes of it. reason is SkipImageMissing or SkipImageTooLarge
// when it fails.
func (a *assembler) readImageFile(c candidate) ([]byte, string, error) {
	err := fmt.Errorf("no image file")
	for _, p := range a.imagePaths(c) {
		var f *os.File
		if f, err = os.Open(p); err != nil {
			continue
		}
		data, err := io.ReadAll(io.LimitReader(f, a.cfg.MaxImageBytes+1))
		f.Close()
		if err != nil {
			return nil, SkipImageMissing, err
		}
		if int64(len(data)) > a.cfg.MaxImageBytes {
			return nil, SkipImageTooLarge, fmt.Errorf("%s: file larger than the %d-byte limit", p, a.cfg.MaxImageBytes)
		}
		return data, "", nil
	}
	return nil, SkipImageMissing, err
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

func containsInt(s []int, k int) bool {
	for _, v := range s {
		if v == k {
			return true
		}
	}
	return false
}

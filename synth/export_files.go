package synth

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"
)

// The JSON records written, field for field as in the real files.
type (
	cocoImage struct {
		License      int    `json:"license"`
		FileName     string `json:"file_name"`
		CocoURL      string `json:"coco_url"`
		Height       int    `json:"height"`
		Width        int    `json:"width"`
		DateCaptured string `json:"date_captured"`
		FlickrURL    string `json:"flickr_url"`
		ID           int    `json:"id"`
	}
	cocoCaption struct {
		ImageID int    `json:"image_id"`
		ID      int    `json:"id"`
		Caption string `json:"caption"`
	}
	cocoInstance struct {
		Segmentation [][]float64 `json:"segmentation"`
		Area         float64     `json:"area"`
		IsCrowd      int         `json:"iscrowd"`
		ImageID      int         `json:"image_id"`
		BBox         [4]float64  `json:"bbox"`
		CategoryID   int         `json:"category_id"`
		ID           int         `json:"id"`
	}
	cocoCategory struct {
		SuperCategory string `json:"supercategory"`
		ID            int    `json:"id"`
		Name          string `json:"name"`
	}
	vgImage struct {
		Width    int    `json:"width"`
		URL      string `json:"url"`
		Height   int    `json:"height"`
		ImageID  int    `json:"image_id"`
		CocoID   *int   `json:"coco_id"`
		FlickrID *int   `json:"flickr_id"`
	}
	vgRegion struct {
		RegionID int    `json:"region_id"`
		Width    int    `json:"width"`
		Height   int    `json:"height"`
		ImageID  int    `json:"image_id"`
		Phrase   string `json:"phrase"`
		Y        int    `json:"y"`
		X        int    `json:"x"`
	}
	vgRegionImage struct {
		Regions []vgRegion `json:"regions"`
		ID      int        `json:"id"`
	}
	vgObject struct {
		Synsets    []string `json:"synsets"`
		H          int      `json:"h"`
		ObjectID   int      `json:"object_id"`
		Names      []string `json:"names"`
		W          int      `json:"w"`
		Attributes []string `json:"attributes,omitempty"`
		Y          int      `json:"y"`
		X          int      `json:"x"`
	}
	vgObjectImage struct {
		ImageID  int        `json:"image_id"`
		Objects  []vgObject `json:"objects"`
		ImageURL string     `json:"image_url,omitempty"`
	}
	vgAttributeImage struct {
		ImageID    int        `json:"image_id"`
		Attributes []vgObject `json:"attributes"`
	}
)

const cocoHeader = `{"info":{"description":"vlp synthetic shapes world in COCO 2017 format","version":"1.0","year":2017},"licenses":[{"url":"","id":1,"name":"synthetic"}],`

// exportWriter streams the six annotation files as images come.
type exportWriter struct {
	cocoDir                    string
	capImages, capAnns         *jsonArray
	instImages, instAnns       *jsonArray
	vgImages, vgRegions, vgObj *jsonArray
	vgAttr                     *jsonArray
	stats                      ExportStats
	all                        []*jsonArray
}

func newExportWriter(cocoDir, vgDir string) (*exportWriter, error) {
	w := &exportWriter{cocoDir: cocoDir}
	ann := filepath.Join(cocoDir, "annotations")
	specs := []struct {
		dst    **jsonArray
		path   string
		prefix string
	}{
		{&w.capImages, filepath.Join(ann, "captions_train2017.json"), cocoHeader + `"images":`},
		{&w.capAnns, filepath.Join(ann, ".captions.part"), ""},
		{&w.instImages, filepath.Join(ann, "instances_train2017.json"), cocoHeader + `"images":`},
		{&w.instAnns, filepath.Join(ann, ".instances.part"), ""},
		{&w.vgImages, filepath.Join(vgDir, "image_data.json"), ""},
		{&w.vgRegions, filepath.Join(vgDir, "region_descriptions.json"), ""},
		{&w.vgObj, filepath.Join(vgDir, "objects.json"), ""},
		{&w.vgAttr, filepath.Join(vgDir, "attributes.json"), ""},
	}
	for _, s := range specs {
		a, err := createArray(s.path, s.prefix)
		if err != nil {
			w.abort()
			return nil, err
		}
		*s.dst = a
		w.all = append(w.all, a)
	}
	return w, nil
}

// abort closes whatever is still open (after finish it does nothing).
func (w *exportWriter) abort() {
	for _, a := range w.all {
		a.f.Close()
	}
	w.all = nil
}

func (w *exportWriter) add(cfg ExportConfig, m Membership, p Picture) error {
	i := p.Index
	b := p.Image.Bounds()
	if m&InCOCO != 0 {
		img := cocoImage{License: 1, FileName: cocoFileName(i), Height: b.Dy(), Width: b.Dx(), DateCaptured: "2017-01-01 00:00:00", ID: cocoImageID(i)}
		if err := w.capImages.add(img); err != nil {
			return err
		}
		if err := w.instImages.add(img); err != nil {
			return err
		}
		for k, c := range p.Captions {
			if err := w.capAnns.add(cocoCaption{ImageID: img.ID, ID: captionID(i, k), Caption: c}); err != nil {
				return err
			}
		}
		objs := padObjects(p.Objects, cfg.Instances)
		for k, o := range objs {
			x := boxXYWH(o.Box)
			inst := cocoInstance{Segmentation: [][]float64{polygon(x, cfg.PolygonPoints)}, Area: x[2] * x[3], ImageID: img.ID, BBox: x,
				CategoryID: cocoCategoryID(ClassIndex(o.Class)), ID: instanceID(i, k)}
			if err := w.instAnns.add(inst); err != nil {
				return err
			}
		}
		w.stats.COCOImages++
		w.stats.Captions += len(p.Captions)
		w.stats.Instances += len(objs)
	}
	if m&InVG != 0 {
		id := vgImageID(i)
		vi := vgImage{Width: b.Dx(), Height: b.Dy(), ImageID: id, URL: fmt.Sprintf("https://example.invalid/VG_100K/%d.jpg", id)}
		if m&InCOCO != 0 {
			c := cocoImageID(i)
			vi.CocoID = &c
			w.stats.Shared++
		}
		if err := w.vgImages.add(vi); err != nil {
			return err
		}
		regs := vgRegions(cfg, p)
		ri := vgRegionImage{ID: id, Regions: make([]vgRegion, len(regs))}
		for k, r := range regs {
			ri.Regions[k] = vgRegion{RegionID: vgRegionID(i, k), X: r.Box.Min.X, Y: r.Box.Min.Y, Width: r.Box.Dx(), Height: r.Box.Dy(), ImageID: id, Phrase: r.Text}
		}
		if err := w.vgRegions.add(ri); err != nil {
			return err
		}
		oi := vgObjectImage{ImageID: id, ImageURL: vi.URL}
		ai := vgAttributeImage{ImageID: id}
		objs := padObjects(p.Objects, cfg.Objects)
		for k, o := range objs {
			obj := vgObject{Synsets: []string{o.Class + ".n.01"}, ObjectID: vgObjectID(i, k), Names: []string{vgName(cfg, i, k, o.Class)},
				X: o.Box.Min.X, Y: o.Box.Min.Y, W: o.Box.Dx(), H: o.Box.Dy()}
			oi.Objects = append(oi.Objects, obj)
			obj.Attributes = vgAttributes(cfg, i, k, o)
			ai.Attributes = append(ai.Attributes, obj)
		}
		if err := w.vgObj.add(oi); err != nil {
			return err
		}
		if err := w.vgAttr.add(ai); err != nil {
			return err
		}
		w.stats.VGImages++
		w.stats.Regions += len(regs)
		w.stats.Objects += len(objs)
	}
	return nil
}

// finish closes the arrays and assembles the COCO files (images, then the
// annotations spooled beside them, then the categories).
func (w *exportWriter) finish() (ExportStats, error) {
	var cats []string
	for c, name := range ClassNames {
		cats = append(cats, fmt.Sprintf(`{"supercategory":"shape","id":%d,"name":%q}`, cocoCategoryID(c), name))
	}
	for _, a := range []*jsonArray{w.capAnns, w.instAnns, w.vgImages, w.vgRegions, w.vgObj, w.vgAttr} {
		if err := a.close(""); err != nil {
			return w.stats, err
		}
	}
	join := []struct {
		dst  *jsonArray
		part *jsonArray
		tail string
	}{
		{w.capImages, w.capAnns, "}"},
		{w.instImages, w.instAnns, `,"categories":[` + strings.Join(cats, ",") + "]}"},
	}
	for _, j := range join {
		j.dst.w.WriteString(`],"annotations":`)
		if err := appendFile(j.dst.w, j.part.f.Name()); err != nil {
			return w.stats, err
		}
		j.dst.w.WriteString(j.tail)
		if err := j.dst.w.Flush(); err != nil {
			return w.stats, err
		}
		if err := j.dst.f.Close(); err != nil {
			return w.stats, err
		}
	}
	w.all = nil
	return w.stats, nil
}

// vgName spells an object's name as VG annotators do now and then
// (capitalised, plural, padded), so that the importer's normalisation has
// something to do; every spelling normalises back to the class name.
func vgName(cfg ExportConfig, i, k int, class string) string {
	switch mix(cfg.World.Seed^uint64(i)<<8^uint64(k)^0xabcdef) % 16 {
	case 0:
		return strings.ToUpper(class[:1]) + class[1:]
	case 1:
		if strings.HasSuffix(class, "s") {
			return class + "es" // crosses
		}
		return class + "s"
	case 2:
		return " " + class + " "
	}
	return class
}

// vgAttributes are colour and size, spelt with the same small variations.
func vgAttributes(cfg ExportConfig, i, k int, o Object) []string {
	attrs := o.Attributes()
	if mix(cfg.World.Seed^uint64(i)<<8^uint64(k)^0x123457)%8 == 0 {
		attrs[0] = strings.ToUpper(attrs[0][:1]) + attrs[0][1:] + " "
	}
	return attrs
}

// vgRegions returns the picture's regions, padded with paraphrases up to
// cfg.Regions.
func vgRegions(cfg ExportConfig, p Picture) []Region {
	regs := append([]Region(nil), p.Regions...)
	if cfg.Regions == 0 || len(p.Objects) == 0 {
		return regs
	}
	var extra []Region
	for _, o := range p.Objects {
		for _, t := range []string{
			o.Size + " " + o.Colour + " " + o.Class, "the " + o.Size + " " + o.Colour + " " + o.Class,
			o.Colour + " " + o.Class, "a " + o.Colour + " " + o.Class, o.Size + " " + o.Class,
			"a " + o.Class + " that is " + o.Colour, "this " + o.Class + " is " + o.Colour, "the " + o.Class + " is " + o.Size,
		} {
			extra = append(extra, Region{Text: t, Box: o.Box})
		}
	}
	for k := 0; len(regs) < cfg.Regions; k++ {
		regs = append(regs, extra[k%len(extra)])
	}
	return regs[:cfg.Regions]
}

// padObjects repeats objs cyclically up to n (n <= len(objs): unchanged).
func padObjects(objs []Object, n int) []Object {
	if n <= len(objs) || len(objs) == 0 {
		return objs
	}
	out := make([]Object, n)
	for k := range out {
		out[k] = objs[k%len(objs)]
	}
	return out
}

// polygon traces n points (at least 4) clockwise around an x, y, w, h box,
// as a COCO segmentation [x1, y1, x2, y2, …].
func polygon(b [4]float64, n int) []float64 {
	if n < 4 {
		n = 4
	}
	per := 2 * (b[2] + b[3])
	out := make([]float64, 0, 2*n)
	for k := 0; k < n; k++ {
		d := per * float64(k) / float64(n)
		var x, y float64
		switch {
		case d < b[2]:
			x, y = b[0]+d, b[1]
		case d < b[2]+b[3]:
			x, y = b[0]+b[2], b[1]+d-b[2]
		case d < 2*b[2]+b[3]:
			x, y = b[0]+b[2]-(d-b[2]-b[3]), b[1]+b[3]
		default:
			x, y = b[0], b[1]+b[3]-(d-2*b[2]-b[3])
		}
		out = append(out, math.Round(x*100)/100, math.Round(y*100)/100)
	}
	return out
}

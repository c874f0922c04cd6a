package sharding

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
)

// Input records, as the real files spell them (older VG releases spell a
// few keys differently; both are accepted). Free text is a jsonText so
// that invalid UTF-8 is seen, not repaired.
type (
	cocoImage struct {
		ID       uint64   `json:"id"`
		FileName jsonText `json:"file_name"`
		Width    int      `json:"width"`
		Height   int      `json:"height"`
	}
	cocoCaption struct {
		ID      uint64   `json:"id"`
		ImageID uint64   `json:"image_id"`
		Caption jsonText `json:"caption"`
	}
	cocoInstance struct {
		ID         uint64    `json:"id"`
		ImageID    uint64    `json:"image_id"`
		CategoryID int       `json:"category_id"`
		BBox       []float64 `json:"bbox"`
		IsCrowd    int       `json:"iscrowd"`
	}
	cocoCategory struct {
		ID   int      `json:"id"`
		Name jsonText `json:"name"`
	}
	vgImage struct {
		ImageID uint64   `json:"image_id"`
		ID      uint64   `json:"id"` // VG 1.0
		Width   int      `json:"width"`
		Height  int      `json:"height"`
		URL     jsonText `json:"url"`
		CocoID  *uint64  `json:"coco_id"`
	}
	vgRegion struct {
		RegionID uint64   `json:"region_id"`
		ImageID  uint64   `json:"image_id"`
		X        float64  `json:"x"`
		Y        float64  `json:"y"`
		Width    float64  `json:"width"`
		Height   float64  `json:"height"`
		Phrase   jsonText `json:"phrase"`
	}
	vgObject struct {
		ObjectID   uint64     `json:"object_id"`
		ID         uint64     `json:"id"` // VG 1.0
		X          float64    `json:"x"`
		Y          float64    `json:"y"`
		W          float64    `json:"w"`
		H          float64    `json:"h"`
		Names      []jsonText `json:"names"`
		Name       jsonText   `json:"name"` // VG 1.0
		MergedIDs  []uint64   `json:"merged_object_ids"`
		Attributes []jsonText `json:"attributes"`
	}
	// One element of region_descriptions.json, objects.json or
	// attributes.json: an image and its items. Items are decoded one by one
	// (json.RawMessage) only when the element as a whole does not decode,
	// so that one bad item costs only itself.
	vgElement[T any] struct {
		ImageID    uint64 `json:"image_id"`
		ID         uint64 `json:"id"` // VG 1.0 region_descriptions.json
		Regions    []T    `json:"regions"`
		Objects    []T    `json:"objects"`
		Attributes []T    `json:"attributes"`
	}
)

// Spooled records: what the shard writers need, texts already cleaned and
// names normalised. A record whose item cannot be used carries its defect,
// so that duplicate ids are judged over every copy before anything is
// dropped (docs/data.md, "Duplicate ids").
type (
	capRec struct {
		ID   uint64
		Text string  `json:",omitempty"`
		Def  *defect `json:",omitempty"`
	}
	instRec struct {
		ID    uint64
		Cat   int
		Box   [4]float64 // x, y, w, h in pixels
		Crowd bool       `json:",omitempty"`
	}
	regRec struct {
		ID   uint64
		Box  [4]float64
		Text string  `json:",omitempty"`
		Def  *defect `json:",omitempty"`
	}
	objRec struct {
		ID     uint64
		Box    [4]float64
		Names  []string `json:",omitempty"`
		Merged []uint64 `json:",omitempty"` // merged_object_ids: other ids of this object
		Def    *defect  `json:",omitempty"`
	}
	// attrRec is one entry of attributes.json: the attributes given to one
	// object id (normalised; repeats kept, they are counted when attached).
	attrRec struct {
		ID    uint64
		Attrs []string `json:",omitempty"`
		Bad   []defect `json:",omitempty"` // one per unusable attribute string
	}
)

// defect says why an item cannot be used.
type defect struct {
	Reason string `json:"r"`
	Detail string `json:"d"`           // where and what, for the report's examples
	Sum    uint64 `json:"s,omitempty"` // hash of the raw text: tells copies apart
}

// badItem is an item of an element that has the wrong shape; n is how
// many items of the unit it stands for.
type badItem struct {
	n   int
	msg string
}

func textSum(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

// checkID: a source id must be set (not 0) and fit the 40 bits a
// dataset-wide id keeps of it (ids.go).
func checkID(what string, id uint64) error {
	if id == 0 {
		return fmt.Errorf("%s is missing or 0", what)
	}
	if id > idLowMask {
		return fmt.Errorf("%s %d does not fit in %d bits", what, id, idShift)
	}
	return nil
}

// place is where an element was read: its file and byte offset. It is
// formatted only when a message needs it.
type place struct {
	file string
	off  int64
}

func (p place) String() string { return fmt.Sprintf("%s: byte %d: ", p.file, p.off) }

// textDefect cleans a text; def is nil when it can be used, else it names
// the text as "<place><what> <id>: ".
func textDefect(t jsonText, maxText int, at place, what string, id any) (string, *defect) {
	text, reason, detail := cleanText(t, maxText)
	if reason == "" {
		return text, nil
	}
	return "", &defect{Reason: reason, Detail: fmt.Sprintf("%s%s %v: %s", at, what, id, detail), Sum: textSum(t.S)}
}

// decodeCOCOImage decodes one element of a COCO file's "images".
func decodeCOCOImage(raw []byte) (cocoImage, error) {
	var im cocoImage
	if err := json.Unmarshal(raw, &im); err != nil {
		return im, err
	}
	return im, checkID("image id", im.ID)
}

// decodeCOCOCaption decodes one element of captions_train2017.json's
// "annotations"; at is where it was read.
func decodeCOCOCaption(raw []byte, maxText int, at place) (imageID uint64, rec capRec, err error) {
	var a cocoCaption
	if err := json.Unmarshal(raw, &a); err != nil {
		return 0, rec, err
	}
	if err := checkID("image_id", a.ImageID); err != nil {
		return 0, rec, err
	}
	if err := checkID("caption id", a.ID); err != nil {
		return 0, rec, err
	}
	rec.ID = a.ID
	rec.Text, rec.Def = textDefect(a.Caption, maxText, at, "caption", a.ID)
	return a.ImageID, rec, nil
}

// decodeCOCOInstance decodes one element of instances_train2017.json's
// "annotations".
func decodeCOCOInstance(raw []byte) (imageID uint64, rec instRec, err error) {
	var a cocoInstance
	if err := json.Unmarshal(raw, &a); err != nil {
		return 0, rec, err
	}
	if err := checkID("image_id", a.ImageID); err != nil {
		return 0, rec, err
	}
	if err := checkID("annotation id", a.ID); err != nil {
		return 0, rec, err
	}
	if len(a.BBox) != 4 {
		return 0, rec, fmt.Errorf("bbox has %d numbers, not 4", len(a.BBox))
	}
	return a.ImageID, instRec{ID: a.ID, Cat: a.CategoryID, Box: [4]float64(a.BBox), Crowd: a.IsCrowd != 0}, nil
}

// decodeCOCOCategory decodes one element of "categories"; the name is
// checked like a text.
func decodeCOCOCategory(raw []byte, maxText int, at place) (id int, name string, def *defect, err error) {
	var c cocoCategory
	if err := json.Unmarshal(raw, &c); err != nil {
		return 0, "", nil, err
	}
	name, def = textDefect(c.Name, maxText, at, "name of category", c.ID)
	return c.ID, name, def, nil
}

// decodeVGImage decodes one element of image_data.json.
func decodeVGImage(raw []byte) (vgImage, error) {
	var im vgImage
	if err := json.Unmarshal(raw, &im); err != nil {
		return im, err
	}
	if im.ImageID == 0 {
		im.ImageID = im.ID
	}
	return im, checkID("image_id", im.ImageID)
}

// vgDecoder decodes the elements of a per-image VG file: the image id and
// its items (the list pick selects), each turned into a record by item. An
// item of the wrong shape becomes a badItem; an error means the element
// itself is unusable (no image id, the list not a list).
type vgDecoder[T, R any] struct {
	pick    func(*vgElement[T]) []T
	pickRaw func(*vgElement[json.RawMessage]) []json.RawMessage
	item    func(imageID uint64, k int, v *T) (R, *badItem)
}

// decode decodes the element whole; only if that fails are its items
// decoded one by one, to find the bad ones.
func (d vgDecoder[T, R]) decode(raw []byte) (uint64, []R, []badItem, error) {
	if imageID, recs, bad, ok := d.whole(raw); ok {
		return imageID, recs, bad, nil
	}
	return d.items(raw)
}

// whole is decode's fast path; ok is false when the element does not
// decode as a whole.
func (d vgDecoder[T, R]) whole(raw []byte) (imageID uint64, recs []R, bad []badItem, ok bool) {
	var el vgElement[T]
	if json.Unmarshal(raw, &el) != nil {
		return 0, nil, nil, false
	}
	imageID = el.ImageID
	if imageID == 0 {
		imageID = el.ID
	}
	if checkID("image_id", imageID) != nil {
		return 0, nil, nil, false // the slow path says why
	}
	items := d.pick(&el)
	for k := range items {
		if r, b := d.item(imageID, k, &items[k]); b != nil {
			bad = append(bad, *b)
		} else {
			recs = append(recs, r)
		}
	}
	return imageID, recs, bad, true
}

// items is decode's slow path: item by item.
func (d vgDecoder[T, R]) items(raw []byte) (uint64, []R, []badItem, error) {
	var rel vgElement[json.RawMessage]
	if err := json.Unmarshal(raw, &rel); err != nil {
		return 0, nil, nil, err
	}
	imageID := rel.ImageID
	if imageID == 0 {
		imageID = rel.ID
	}
	if err := checkID("image_id", imageID); err != nil {
		return 0, nil, nil, err
	}
	var recs []R
	var bad []badItem
	for k, r := range d.pickRaw(&rel) {
		var v T
		if err := json.Unmarshal(r, &v); err != nil {
			bad = append(bad, badItem{n: 1, msg: fmt.Sprintf("item %d: %v", k, err)})
			continue
		}
		if rec, b := d.item(imageID, k, &v); b != nil {
			bad = append(bad, *b)
		} else {
			recs = append(recs, rec)
		}
	}
	return imageID, recs, bad, nil
}

// regionDecoder decodes elements of region_descriptions.json; at is where
// the element was read.
func regionDecoder(maxText int, at place) vgDecoder[vgRegion, regRec] {
	return vgDecoder[vgRegion, regRec]{
		pick:    func(e *vgElement[vgRegion]) []vgRegion { return e.Regions },
		pickRaw: func(e *vgElement[json.RawMessage]) []json.RawMessage { return e.Regions },
		item: func(imageID uint64, k int, r *vgRegion) (regRec, *badItem) {
			if err := checkID("region_id", r.RegionID); err != nil {
				return regRec{}, &badItem{1, fmt.Sprintf("region %d: %v", k, err)}
			}
			if r.ImageID != 0 && r.ImageID != imageID {
				return regRec{}, &badItem{1, fmt.Sprintf("region %d names image %d inside the list of image %d", r.RegionID, r.ImageID, imageID)}
			}
			rec := regRec{ID: r.RegionID, Box: [4]float64{r.X, r.Y, r.Width, r.Height}}
			rec.Text, rec.Def = textDefect(r.Phrase, maxText, at, "region", r.RegionID)
			return rec, nil
		},
	}
}

// objectDecoder decodes elements of objects.json. An object keeps the
// names that are usable texts, normalised (NormalizeName); one with none
// carries a defect saying why.
func objectDecoder(maxText int, at place) vgDecoder[vgObject, objRec] {
	return vgDecoder[vgObject, objRec]{
		pick:    func(e *vgElement[vgObject]) []vgObject { return e.Objects },
		pickRaw: func(e *vgElement[json.RawMessage]) []json.RawMessage { return e.Objects },
		item: func(_ uint64, k int, o *vgObject) (objRec, *badItem) {
			id := objectID(o)
			if err := checkID("object_id", id); err != nil {
				return objRec{}, &badItem{1, fmt.Sprintf("object %d: %v", k, err)}
			}
			rec := objRec{ID: id, Box: [4]float64{o.X, o.Y, o.W, o.H}}
			for _, m := range o.MergedIDs {
				if m != id && checkID("merged id", m) == nil {
					rec.Merged = append(rec.Merged, m)
				}
			}
			rec.Names, rec.Def = objectNames(o, maxText, at, id)
			return rec, nil
		},
	}
}

// attributeDecoder decodes elements of attributes.json. Each entry with
// attributes becomes an attrRec; an entry without is no item (ID 0, dropped
// by decodeVGAttributes).
func attributeDecoder(maxText int, at place) vgDecoder[vgObject, attrRec] {
	return vgDecoder[vgObject, attrRec]{
		pick:    func(e *vgElement[vgObject]) []vgObject { return e.Attributes },
		pickRaw: func(e *vgElement[json.RawMessage]) []json.RawMessage { return e.Attributes },
		item: func(_ uint64, k int, o *vgObject) (attrRec, *badItem) {
			id := objectID(o)
			if len(o.Attributes) == 0 {
				return attrRec{}, nil
			}
			if err := checkID("object_id", id); err != nil {
				return attrRec{}, &badItem{len(o.Attributes), fmt.Sprintf("entry %d: %v", k, err)}
			}
			r := attrRec{ID: id}
			for _, a := range o.Attributes {
				n, def := attributeName(a, maxText, at, id)
				if def != nil {
					r.Bad = append(r.Bad, *def)
				} else {
					r.Attrs = append(r.Attrs, n)
				}
			}
			return r, nil
		},
	}
}

// decodeVGRegions decodes one element of region_descriptions.json.
func decodeVGRegions(raw []byte, maxText int, at place) (uint64, []regRec, []badItem, error) {
	return regionDecoder(maxText, at).decode(raw)
}

// decodeVGObjects decodes one element of objects.json.
func decodeVGObjects(raw []byte, maxText int, at place) (uint64, []objRec, []badItem, error) {
	return objectDecoder(maxText, at).decode(raw)
}

// decodeVGAttributes decodes one element of attributes.json.
func decodeVGAttributes(raw []byte, maxText int, at place) (uint64, []attrRec, []badItem, error) {
	imageID, recs, bad, err := attributeDecoder(maxText, at).decode(raw)
	return imageID, dropEmptyEntries(recs), bad, err
}

// dropEmptyEntries drops the entries of objects without attributes.
func dropEmptyEntries(recs []attrRec) []attrRec {
	kept := recs[:0]
	for _, r := range recs {
		if r.ID != 0 {
			kept = append(kept, r)
		}
	}
	return kept
}

func (r attrRec) items() int { return len(r.Attrs) + len(r.Bad) }

func objectID(o *vgObject) uint64 {
	if o.ObjectID != 0 {
		return o.ObjectID
	}
	return o.ID
}

// objectNames returns the usable names of o, normalised, or the defect of
// an object with none: the first bad name's reason, or object_no_name.
func objectNames(o *vgObject, maxText int, at place, id uint64) ([]string, *defect) {
	names := o.Names
	if len(names) == 0 && (o.Name.S != "" || o.Name.Bad != 0) {
		names = []jsonText{o.Name}
	}
	var out []string
	var first *defect
	for _, n := range names {
		if _, reason, detail := cleanText(n, maxText); reason != "" && reason != SkipTextEmpty {
			if first == nil {
				first = &defect{Reason: reason, Detail: fmt.Sprintf("%sobject %d: name: %s", at, id, detail)}
			}
			continue
		}
		if v := NormalizeName(n.S); v != "" {
			out = append(out, v)
		}
	}
	if len(out) > 0 {
		return out, nil
	}
	raw := ""
	for _, n := range names {
		raw += n.S + "\x00"
	}
	if first == nil {
		first = &defect{Reason: SkipObjectNoName, Detail: fmt.Sprintf("%sobject %d: no name (names %q)", at, id, textStrings(names))}
	}
	first.Sum = textSum(raw)
	return nil, first
}

// attributeName checks and normalises one attribute string.
func attributeName(a jsonText, maxText int, at place, id uint64) (string, *defect) {
	if _, reason, detail := cleanText(a, maxText); reason != "" && reason != SkipTextEmpty {
		return "", &defect{Reason: reason, Detail: fmt.Sprintf("%sobject %d: attribute: %s", at, id, detail), Sum: textSum(a.S)}
	}
	n := NormalizeAttribute(a.S)
	if n == "" {
		return "", &defect{Reason: SkipTextEmpty, Detail: fmt.Sprintf("%sobject %d: attribute %q is empty once normalised", at, id, a.S), Sum: textSum(a.S)}
	}
	return n, nil
}

func textStrings(ts []jsonText) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.S
	}
	return out
}

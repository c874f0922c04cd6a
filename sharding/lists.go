package sharding

import "fmt"

// Image lists and the COCO category list are held in memory while the
// files stream, with every distinct content seen for an id, so that an id
// listed twice is judged like any other (dups.go): identical repeats are
// one item, differing entries none.

// vgImageKey is what the import uses of an image_data.json entry: two
// entries are the same image when these agree.
type vgImageKey struct {
	Width, Height int
	URL           jsonText
	CocoID        uint64
	HasCocoID     bool
}

func (im vgImage) key() vgImageKey {
	k := vgImageKey{Width: im.Width, Height: im.Height, URL: im.URL}
	if im.CocoID != nil {
		k.CocoID, k.HasCocoID = *im.CocoID, true
	}
	return k
}

// variantList collects id-keyed entries: the distinct contents seen for
// each id, in the order ids first appeared, and how many identical
// repeats there were.
type variantList[K comparable, T comparable] struct {
	variants map[K][]T
	repeats  map[K]int64
	order    []K
}

func newVariantList[K comparable, T comparable]() variantList[K, T] {
	return variantList[K, T]{variants: map[K][]T{}, repeats: map[K]int64{}}
}

func (l *variantList[K, T]) add(id K, v T) {
	vs, seen := l.variants[id]
	if !seen {
		l.order = append(l.order, id)
	}
	if contains(vs, v) {
		l.repeats[id]++
		return
	}
	l.variants[id] = append(vs, v)
}

// imageList collects the image entries of one file.
type imageList[T comparable] struct{ variantList[uint64, T] }

func newImageList[T comparable]() *imageList[T] {
	return &imageList[T]{newVariantList[uint64, T]()}
}

// mergeCOCOImages joins the image lists of the two COCO files. Both files
// list the same images: an entry both have, alike, is one image. An id
// whose entries differ (in a file or between the files) is no image.
func (d *indexer) mergeCOCOImages() {
	all := newImageList[cocoImage]()
	for _, l := range d.cocoImages {
		if l == nil {
			continue
		}
		for _, id := range l.order {
			for _, v := range l.variants[id] {
				if vs, ok := all.variants[id]; !ok || !contains(vs, v) {
					all.add(id, v)
				}
			}
			all.repeats[id] += l.repeats[id]
		}
	}
	d.ix.coco = resolveImages(d.rep, all, d.ix.cocoConflict, "COCO")
}

func contains[T comparable](vs []T, v T) bool {
	for _, o := range vs {
		if o == v {
			return true
		}
	}
	return false
}

// resolveImages counts an image list and returns its usable images:
// identical repeats are one image (the rest counted as duplicates),
// differing entries make the id a conflict.
func resolveImages[T comparable](rep *Report, l *imageList[T], conflict map[uint64]bool, what string) map[uint64]T {
	out := make(map[uint64]T, len(l.variants))
	for _, id := range l.order {
		vs := l.variants[id]
		if n := l.repeats[id]; n > 0 {
			rep.readSkip(UnitImage, SkipDuplicate, n, fmt.Sprintf("%s image %d listed %d more times alike", what, id, n))
		}
		if len(vs) > 1 {
			conflict[id] = true
			rep.readSkip(UnitImage, SkipIDConflict, int64(len(vs)), fmt.Sprintf("%s image %d listed %d times with different contents", what, id, len(vs)))
			continue
		}
		rep.read(UnitImage, 1)
		out[id] = vs[0]
	}
	return out
}

// categoryList collects the categories of the instances file, and the
// entries that were not usable.
type categoryList struct {
	variantList[int, string]
	defects  []*defect
	defectID []int
}

func newCategoryList() *categoryList {
	return &categoryList{variantList: newVariantList[int, string]()}
}

func (l *categoryList) add(id int, name string, def *defect) {
	if def != nil {
		l.defects = append(l.defects, def)
		l.defectID = append(l.defectID, id)
		return
	}
	l.variantList.add(id, name)
}

// resolve counts the categories and returns the usable ones: a category
// whose name is not a usable text is skipped; an id listed with different
// names is a conflict (none kept); identical repeats are one category.
func (l *categoryList) resolve(rep *Report, conflict map[int]bool) []category {
	var out []category
	for i, def := range l.defects {
		if _, ok := l.variants[l.defectID[i]]; ok {
			conflict[l.defectID[i]] = true // one copy usable, another not: ambiguous
		}
		rep.readSkip(UnitCategory, def.Reason, 1, def.Detail)
	}
	for _, id := range l.order {
		if n := l.repeats[id]; n > 0 {
			rep.readSkip(UnitCategory, SkipDuplicate, n, fmt.Sprintf("category %d listed %d more times alike", id, n))
		}
		vs := l.variants[id]
		if len(vs) > 1 || conflict[id] {
			conflict[id] = true
			rep.readSkip(UnitCategory, SkipIDConflict, int64(len(vs)), fmt.Sprintf("category %d listed as %q", id, vs))
			continue
		}
		rep.read(UnitCategory, 1)
		out = append(out, category{ID: id, Name: vs[0]})
	}
	return out
}

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

// imageList collects the image entries of one file: the distinct
// contents seen for each id and how many identical repeats there were.
type imageList[T comparable] struct {
	variants map[uint64][]T
	repeats  map[uint64]int64
	order    []uint64
}

func newImageList[T comparable]() *imageList[T] {
	return &imageList[T]{variants: map[uint64][]T{}, repeats: map[uint64]int64{}}
}

func (l *imageList[T]) add(id uint64, v T) {
	vs, seen := l.variants[id]
	if !seen {
		l.order = append(l.order, id)
	}
	for _, o := range vs {
		if o == v {
			l.repeats[id]++
			return
		}
	}
	l.variants[id] = append(vs, v)
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
				if vs, ok := all.variants[id]; !ok || !containsImage(vs, v) {
					all.add(id, v)
				}
			}
			all.repeats[id] += l.repeats[id]
		}
	}
	d.ix.coco = resolveImages(d.rep, all, d.ix.cocoConflict, "COCO")
}

func containsImage[T comparable](vs []T, v T) bool {
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

// categoryList collects the categories of the instances file.
type categoryList struct {
	order    []int
	names    map[int][]string
	repeats  map[int]int64
	defects  []*defect
	defectID []int
}

func newCategoryList() *categoryList {
	return &categoryList{names: map[int][]string{}, repeats: map[int]int64{}}
}

func (l *categoryList) add(id int, name string, def *defect) {
	if def != nil {
		l.defects = append(l.defects, def)
		l.defectID = append(l.defectID, id)
		return
	}
	vs, seen := l.names[id]
	if !seen {
		l.order = append(l.order, id)
	}
	for _, v := range vs {
		if v == name {
			l.repeats[id]++
			return
		}
	}
	l.names[id] = append(vs, name)
}

// resolve counts the categories and returns the usable ones: a category
// whose name is not a usable text is skipped; an id listed with different
// names is a conflict (none kept); identical repeats are one category.
func (l *categoryList) resolve(rep *Report, conflict map[int]bool) []category {
	var out []category
	for i, def := range l.defects {
		if _, ok := l.names[l.defectID[i]]; ok {
			conflict[l.defectID[i]] = true // one copy usable, another not: ambiguous
		}
		rep.readSkip(UnitCategory, def.Reason, 1, def.Detail)
	}
	for _, id := range l.order {
		if n := l.repeats[id]; n > 0 {
			rep.readSkip(UnitCategory, SkipDuplicate, n, fmt.Sprintf("category %d listed %d more times alike", id, n))
		}
		vs := l.names[id]
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

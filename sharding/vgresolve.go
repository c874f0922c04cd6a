package sharding

import (
	"fmt"
	"sort"
	"sync"
)

// vgObj is a VG object of one image after resolution: kept (skip == "")
// with its class, box and the attribute names that landed on it.
type vgObj struct {
	rec   *objRec
	class int
	box   [4]float32
	attrs []string
	skip  string
}

// resolveVG decides which VG objects of an image are kept and which
// attribute strings land on them, in this order for an object: duplicate
// id, no usable name, no name in the classes, box; for an attribute entry:
// duplicate id, then per string: unusable text, the object it names
// (unknown, ambiguous, left out), repeated on the object. An attribute
// entry names its object by id or by one of the object's
// merged_object_ids (an object's own id wins over another's merged id).
//
// Every object and attribute skipped is counted in rep, and boxes clipped
// too; rep nil counts nothing (the attribute vocabulary pass). W, H is the
// annotated size boxes are normalised by. The objects come back in id
// order, kept or not.
func (a *assembler) resolveVG(key string, objs []objRec, entries []attrRec, W, H int, rep *Report) []vgObj {
	skip := func(u, reason string, n int, example string) {
		if rep != nil {
			rep.skip(u, reason, int64(n), example)
		}
	}
	sort.SliceStable(objs, func(i, j int) bool { return objs[i].ID < objs[j].ID })
	out := make([]vgObj, len(objs))
	dups := dupCheck{s: a.ix.objects}
	for i := range objs {
		o := &objs[i]
		v := vgObj{rec: o, class: -1}
		v.skip = dups.reason(o.ID)
		switch {
		case v.skip != "":
			skip(UnitObject, v.skip, 1, fmt.Sprintf("%s object %d", key, o.ID))
		case o.Def != nil:
			v.skip = o.Def.Reason
			skip(UnitObject, v.skip, 1, o.Def.Detail)
		default:
			for _, n := range o.Names {
				if k, ok := a.classes[n]; ok {
					v.class = k
					break
				}
			}
			if v.class < 0 {
				v.skip = SkipObjectOutOfVocab
				skip(UnitObject, v.skip, 1, fmt.Sprintf("%s object %d: names %q are no class", key, o.ID, o.Names))
				break
			}
			nb, clipped, ok := normBox(o.Box, W, H)
			if !ok {
				v.skip = SkipBoxOutside
				skip(UnitObject, v.skip, 1, fmt.Sprintf("%s object %d: box %v outside %d×%d", key, o.ID, o.Box, W, H))
				break
			}
			if clipped && rep != nil {
				rep.addRepair(&rep.Clipped)
			}
			v.box = nb
		}
		out[i] = v
	}

	// Which object each id names: own ids first, then merged ids.
	const ambiguous = -1
	byID := map[uint64]int{}
	for i := range out {
		if _, ok := byID[objs[i].ID]; !ok {
			byID[objs[i].ID] = i
		}
	}
	merged := map[uint64]int{}
	for i := range out {
		for _, m := range objs[i].Merged {
			if _, own := byID[m]; own {
				continue
			}
			switch j, ok := merged[m]; {
			case !ok:
				merged[m] = i
			case j == ambiguous || objs[j].ID == objs[i].ID:
				// already ambiguous, or a duplicate copy of the same object
			default:
				merged[m] = ambiguous
			}
		}
	}

	adups := dupCheck{s: a.ix.attrs}
	for _, e := range entries {
		where := fmt.Sprintf("%s attributes of object %d", key, e.ID)
		if r := adups.reason(e.ID); r != "" {
			skip(UnitAttribute, r, e.items(), where)
			continue
		}
		for _, d := range e.Bad {
			skip(UnitAttribute, d.Reason, 1, d.Detail)
		}
		if len(e.Attrs) == 0 {
			continue
		}
		i, ok := byID[e.ID]
		if !ok {
			i, ok = merged[e.ID]
		}
		switch {
		case !ok:
			skip(UnitAttribute, SkipAttributeNoObject, len(e.Attrs), fmt.Sprintf("%s: no object %d in the image (attributes %q)", where, e.ID, e.Attrs))
			continue
		case i == ambiguous:
			skip(UnitAttribute, SkipAttributeAmbiguous, len(e.Attrs), fmt.Sprintf("%s: %d is a merged id of several objects", where, e.ID))
			continue
		case out[i].skip != "":
			skip(UnitAttribute, SkipAttributeObjectLeft, len(e.Attrs), fmt.Sprintf("%s: object %d left out (%s)", where, objs[i].ID, out[i].skip))
			continue
		}
		for _, n := range e.Attrs {
			if containsString(out[i].attrs, n) {
				skip(UnitAttribute, SkipDuplicate, 1, fmt.Sprintf("%s: %q given twice", where, n))
				continue
			}
			out[i].attrs = append(out[i].attrs, n)
		}
	}
	return out
}

func containsString(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// attributeCounts counts the attribute names that land on kept VG objects
// (resolveVG over every candidate with VG annotations), from which the
// attribute vocabulary is drawn. It cannot know the images whose file will
// turn out unusable, or that end with no text: their attributes count.
func (a *assembler) attributeCounts(cands []candidate, workers int) (counter, error) {
	parts := make([]counter, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cnt := counter{}
			for k := w; k < len(cands); k += workers {
				c := cands[k]
				if !c.inVG || a.ix.attrs == nil || len(a.ix.attrs.spans[c.vgID]) == 0 {
					continue
				}
				an := &annotations{}
				err := get(a.ix.attrs, c.vgID, func(r *[]attrRec) { an.attrs = append(an.attrs, *r...) })
				if err == nil {
					err = get(a.ix.objects, c.vgID, func(r *[]objRec) { an.objs = append(an.objs, *r...) })
				}
				if err != nil {
					errs[w] = err
					return
				}
				W, H := c.annW, c.annH
				if W <= 0 || H <= 0 {
					if W, H = a.headerSize(c); W <= 0 {
						continue // the image will be skipped
					}
				}
				for _, o := range a.resolveVG("", an.objs, an.attrs, W, H, nil) {
					for _, n := range o.attrs {
						cnt[n]++
					}
				}
			}
			parts[w] = cnt
		}()
	}
	wg.Wait()
	total := counter{}
	for w, p := range parts {
		if errs[w] != nil {
			return nil, errs[w]
		}
		for n, v := range p {
			total[n] += v
		}
	}
	return total, nil
}

// headerSize reads the size of an image that has no annotated size from
// its JPEG header; 0, 0 when that fails.
func (a *assembler) headerSize(c candidate) (int, int) {
	data, _, err := a.readImageFile(c)
	if err != nil {
		return 0, 0
	}
	if info, err := jpegHeader(data); err == nil {
		return info.Width, info.Height
	}
	return 0, 0
}

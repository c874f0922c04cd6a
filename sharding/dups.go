package sharding

import (
	"encoding/json"
	"fmt"
	"slices"
)

// Duplicate ids. Every id-keyed item (image, category, caption, instance,
// region, object, attribute entry) is checked over the whole input: copies
// that are identical (same image, same content once cleaned) are one item
// read several times, and one copy is kept; copies that differ make the id
// ambiguous, and none is kept, so that a text, a box or an attribute is
// never paired with an image or an object it was not given to.
//
// Ids are collected while the files stream (8 bytes per item) and sorted
// once; only when some id repeats is the spool read again to compare the
// copies.

// judge finds the duplicated ids of s and decides each: s.dups[id] is true
// when the copies conflict. each yields the items of one record.
func judge[T any](s *spool, each func(rec *T, yield func(id uint64, content any))) error {
	if s == nil {
		return nil
	}
	ids := s.ids
	s.ids = nil
	slices.Sort(ids)
	var dup map[uint64]bool
	for i := 1; i < len(ids); i++ {
		if ids[i] == ids[i-1] {
			if dup == nil {
				dup = map[uint64]bool{}
			}
			dup[ids[i]] = false
		}
	}
	if dup == nil {
		return nil
	}
	first := map[uint64]string{}
	for _, is := range s.all() {
		rec, err := readRecord[T](s, is.span)
		if err != nil {
			return err
		}
		var jerr error
		each(&rec, func(id uint64, content any) {
			if _, ok := dup[id]; !ok || dup[id] {
				return
			}
			js, err := json.Marshal(content)
			if err != nil {
				jerr = err
			}
			key := fmt.Sprintf("%d %s", is.image, js)
			if f, seen := first[id]; !seen {
				first[id] = key
			} else if f != key {
				dup[id] = true
			}
		})
		if jerr != nil {
			return jerr
		}
	}
	s.dups = dup
	return nil
}

// judgeAll decides the duplicates of every spool of the index.
func (ix *index) judgeAll() error {
	if err := judge(ix.caps, func(r *capRec, y func(uint64, any)) { y(r.ID, r.key()) }); err != nil {
		return err
	}
	if err := judge(ix.insts, func(r *instRec, y func(uint64, any)) { y(r.ID, r) }); err != nil {
		return err
	}
	if err := judge(ix.regions, func(rs *[]regRec, y func(uint64, any)) {
		for i := range *rs {
			y((*rs)[i].ID, (*rs)[i].key())
		}
	}); err != nil {
		return err
	}
	if err := judge(ix.objects, func(rs *[]objRec, y func(uint64, any)) {
		for i := range *rs {
			y((*rs)[i].ID, (*rs)[i].key())
		}
	}); err != nil {
		return err
	}
	return judge(ix.attrs, func(rs *[]attrRec, y func(uint64, any)) {
		for i := range *rs {
			y((*rs)[i].ID, (*rs)[i].key())
		}
	})
}

// dupCheck applies the duplicate rule to the items of one image, in order:
// it returns the reason to skip an item, or "".
type dupCheck struct {
	s    *spool
	seen map[uint64]bool
}

func (d *dupCheck) reason(id uint64) string {
	if d.s == nil || d.s.dups == nil {
		return ""
	}
	conflict, dup := d.s.dups[id]
	switch {
	case !dup:
		return ""
	case conflict:
		return SkipIDConflict
	case d.seen[id]:
		return SkipDuplicate
	}
	if d.seen == nil {
		d.seen = map[uint64]bool{}
	}
	d.seen[id] = true
	return ""
}

// key is what copies are compared by: the record without where it was read.
func (d *defect) key() *defect {
	if d == nil {
		return nil
	}
	return &defect{Reason: d.Reason, Sum: d.Sum}
}

func (r capRec) key() capRec { r.Def = r.Def.key(); return r }
func (r regRec) key() regRec { r.Def = r.Def.key(); return r }
func (r objRec) key() objRec { r.Def = r.Def.key(); return r }

func (r attrRec) key() attrRec {
	bad := make([]defect, len(r.Bad))
	for i := range r.Bad {
		bad[i] = *r.Bad[i].key()
	}
	r.Bad = bad
	return r
}

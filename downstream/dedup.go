package downstream

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
)

// Duplicate ids, the shard importer's rule: copies of an id that are
// identical are one item read several times, and one copy is kept; copies
// that differ make the id ambiguous, and none is kept, so that an answer
// or a label is never given to a question or an image it was not given
// to. Copies are compared by the sha256 of their decoded record.

// dedup collects records by id in the order ids are first seen.
type dedup[K comparable, T any] struct {
	order []K
	items map[K]*copies[T]
}

// copies is what was read under one id.
type copies[T any] struct {
	rec      T        // the first copy
	sum      [32]byte // of the first copy
	n        int      // copies read
	conflict bool     // some copy differs from the first
	where    string   // where the first copy was read
}

func newDedup[K comparable, T any]() *dedup[K, T] {
	return &dedup[K, T]{items: map[K]*copies[T]{}}
}

// add records one copy of id.
func (d *dedup[K, T]) add(id K, rec T, where string) error {
	js, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("downstream: comparing copies of id %v: %w", id, err)
	}
	sum := sha256.Sum256(js)
	c := d.items[id]
	if c == nil {
		d.items[id] = &copies[T]{rec: rec, sum: sum, n: 1, where: where}
		d.order = append(d.order, id)
		return nil
	}
	c.n++
	if sum != c.sum {
		c.conflict = true
	}
	return nil
}

// settle counts the extra copies of c under unit u and says whether its
// record may be kept: conflicting copies are all skipped (id_conflict),
// identical extra copies are skipped as duplicates and the first goes on
// to be judged by the caller.
func settle[T any](rep *Report, u string, c *copies[T], id any) bool {
	if c.conflict {
		rep.skip(u, SkipIDConflict, int64(c.n), fmtWhere(c.where, id))
		return false
	}
	rep.skip(u, SkipDuplicate, int64(c.n-1), fmtWhere(c.where, id))
	return true
}

func fmtWhere(where string, id any) string {
	js, _ := json.Marshal(id)
	return where + ": id " + string(js)
}

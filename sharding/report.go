package sharding

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
)

// Units of input the import accounts for. Every item it reads is, at the
// end, either kept (it landed in a shard) or skipped for exactly one
// reason: Read == Kept + the sum of Skipped, unit by unit (Tally).
const (
	UnitFile      = "file"      // annotation files (kept: used)
	UnitImage     = "image"     // COCO and VG image entries (a COCO image with its VG twin is two, in one sample)
	UnitCategory  = "category"  // COCO categories (kept: mapped to a class)
	UnitCaption   = "caption"   // COCO captions
	UnitInstance  = "instance"  // COCO object annotations
	UnitRegion    = "region"    // VG region descriptions
	UnitObject    = "object"    // VG objects (kept includes those merged into a COCO object)
	UnitAttribute = "attribute" // one attribute string of one VG attribute entry
)

// units in the order summaries list them.
var units = []string{UnitFile, UnitImage, UnitCategory, UnitCaption, UnitInstance, UnitRegion, UnitObject, UnitAttribute}

// Reasons an item is left out (Tally.Skipped keys). docs/data.md explains
// each policy.
const (
	// Files.
	SkipFileMissing   = "file_missing"   // an expected annotation file is absent
	SkipFileMalformed = "file_malformed" // invalid JSON: the whole file is left out (also counts what was read of it)
	SkipFileNotRead   = "file_not_read"  // not read because a file it depends on is unusable

	// Any item, while reading.
	SkipRecordMalformed = "record_malformed" // valid JSON of the wrong shape (a string id, a missing id)
	SkipRecordTooLarge  = "record_too_large" // an array element longer than MaxRecordBytes

	// Ids.
	SkipDuplicate       = "duplicate"         // an identical copy of an item already counted: one copy is kept
	SkipIDConflict      = "id_conflict"       // items sharing an id but differing: none is kept
	SkipImageIDConflict = "image_id_conflict" // an annotation of an image whose id conflicts

	// Images, and every annotation of an image left out (same reason).
	SkipAnnotationNoImage = "annotation_unknown_image" // annotation of an image no image list has
	SkipImageMissing      = "image_missing"            // the image file is not on disk
	SkipImageTooLarge     = "image_too_large"          // file, dimensions or pixel count over the limits
	SkipImageCorrupt      = "image_corrupt"            // the file does not decode as a JPEG
	SkipImageNoText       = "image_no_text"            // no usable caption or region is left

	// Texts (captions, region phrases, VG names and attributes, category names).
	SkipTextEmpty       = "text_empty"        // empty after trimming white space
	SkipTextInvalidUTF8 = "text_invalid_utf8" // not valid UTF-8 (never repaired)
	SkipTextTooLong     = "text_too_long"     // longer than MaxTextBytes (never cut)

	// Boxes, objects, categories, attributes.
	SkipBoxOutside          = "box_outside"                // entirely outside the image, degenerate (< 1 px) or not finite
	SkipObjectCrowd         = "object_crowd"               // COCO iscrowd=1: a group, not an object
	SkipObjectCategory      = "object_unknown_category"    // COCO category id not among the usable categories
	SkipObjectNoName        = "object_no_name"             // a VG object with no name at all
	SkipObjectOutOfVocab    = "object_out_of_vocab"        // no name of the VG object is a class
	SkipAttributeOutOfVocab = "attribute_out_of_vocab"     // not among the kept attributes
	SkipAttributeNoObject   = "attribute_unknown_object"   // names an object id the image does not have
	SkipAttributeObjectLeft = "attribute_object_left_out"  // its object was left out (counted under object)
	SkipAttributeAmbiguous  = "attribute_object_ambiguous" // its id is the merged id of several objects
)

// Tally accounts for one unit of input.
type Tally struct {
	Read    int64            `json:"read"`
	Kept    int64            `json:"kept"`
	Skipped map[string]int64 `json:"skipped,omitempty"`
}

// SkippedTotal sums Skipped.
func (t *Tally) SkippedTotal() int64 {
	var n int64
	for _, v := range t.Skipped {
		n += v
	}
	return n
}

// Report says what an import did besides writing samples: what it read,
// kept and skipped (and why), what it repaired, which files it could not
// use.
type Report struct {
	mu sync.Mutex

	// Units accounts for every item read, by unit (see UnitImage, …).
	Units map[string]*Tally `json:"units"`
	// Skipped sums Units' skip counts by reason over the units.
	Skipped map[string]int64 `json:"skipped"`
	// Examples holds up to 3 examples per "unit reason": the file and
	// byte offset, or the sample key and the item, and what is wrong.
	Examples     map[string][]string `json:"examples,omitempty"`
	Clipped      int64               `json:"clipped"`       // boxes partly outside the image, clipped to it
	Merged       int64               `json:"merged"`        // VG objects merged into the same COCO object
	SizeMismatch int64               `json:"size_mismatch"` // images whose pixels differ from the annotated size
	FileErrors   []string            `json:"file_errors,omitempty"`
	ShardsKept   int                 `json:"shards_kept"`    // finished shards found valid and reused
	ShardsBuilt  int                 `json:"shards_written"` // shards written by this run
	ShardsEmpty  int                 `json:"shards_empty"`   // shards with no usable sample: not written
}

func newReport() *Report {
	return &Report{Units: map[string]*Tally{}, Skipped: map[string]int64{}, Examples: map[string][]string{}}
}

func (r *Report) unit(u string) *Tally {
	t := r.Units[u]
	if t == nil {
		t = &Tally{Skipped: map[string]int64{}}
		r.Units[u] = t
	}
	if t.Skipped == nil {
		t.Skipped = map[string]int64{}
	}
	return t
}

// read counts n items of unit u read.
func (r *Report) read(u string, n int64) {
	if n == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.unit(u).Read += n
}

// kept counts n items of unit u that landed in a shard.
func (r *Report) kept(u string, n int64) {
	if n == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.unit(u).Kept += n
}

// skip counts n items of unit u left out for reason; example (may be "")
// says which and what is wrong.
func (r *Report) skip(u, reason string, n int64, example string) {
	if n == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.unit(u).Skipped[reason] += n
	r.Skipped[reason] += n
	r.example(u+" "+reason, example)
}

// readSkip counts n items read and skipped at once.
func (r *Report) readSkip(u, reason string, n int64, example string) {
	r.read(u, n)
	r.skip(u, reason, n, example)
}

// maxExample bounds an example's length: one may quote a hostile text.
const maxExample = 300

func (r *Report) example(key, example string) {
	if example == "" || len(r.Examples[key]) >= 3 {
		return
	}
	if len(example) > maxExample {
		example = strings.ToValidUTF8(example[:maxExample], "") + "…"
	}
	r.Examples[key] = append(r.Examples[key], example)
}

// fileError counts a file read and left out, and keeps its message.
func (r *Report) fileError(reason, msg string) {
	r.readSkip(UnitFile, reason, 1, "")
	r.mu.Lock()
	defer r.mu.Unlock()
	r.FileErrors = append(r.FileErrors, msg)
}

// merge adds o's counts into r.
func (r *Report) merge(o *Report) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for u, t := range o.Units {
		rt := r.unit(u)
		rt.Read += t.Read
		rt.Kept += t.Kept
		for k, v := range t.Skipped {
			rt.Skipped[k] += v
		}
	}
	for k, v := range o.Skipped {
		r.Skipped[k] += v
	}
	keys := make([]string, 0, len(o.Examples))
	for k := range o.Examples {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, e := range o.Examples[k] {
			r.example(k, e)
		}
	}
	r.Clipped += o.Clipped
	r.Merged += o.Merged
	r.SizeMismatch += o.SizeMismatch
	r.FileErrors = append(r.FileErrors, o.FileErrors...)
}

// addRepair counts boxes clipped, objects merged or size mismatches.
func (r *Report) addRepair(field *int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	*field++
}

// Balanced returns an error naming the first unit whose Read is not Kept
// plus its skips, or whose skips disagree with Skipped.
func (r *Report) Balanced() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	sums := map[string]int64{}
	for u, t := range r.Units {
		if t.Read != t.Kept+t.SkippedTotal() {
			return fmt.Errorf("sharding: %s: read %d != kept %d + skipped %d %v", u, t.Read, t.Kept, t.SkippedTotal(), t.Skipped)
		}
		for k, v := range t.Skipped {
			sums[k] += v
		}
	}
	for k, v := range r.Skipped {
		if sums[k] != v {
			return fmt.Errorf("sharding: skipped %s: %d in total, %d over the units", k, v, sums[k])
		}
	}
	for k, v := range sums {
		if v != 0 && r.Skipped[k] != v {
			return fmt.Errorf("sharding: skipped %s: %d in total, %d over the units", k, r.Skipped[k], v)
		}
	}
	return nil
}

// WriteSummary prints the report for people.
func (r *Report) WriteSummary(w io.Writer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(w, "shards: %d written, %d kept from a previous run", r.ShardsBuilt, r.ShardsKept)
	if r.ShardsEmpty > 0 {
		fmt.Fprintf(w, ", %d left unwritten (no usable sample)", r.ShardsEmpty)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "repaired: %d boxes clipped to the image, %d VG objects merged into COCO ones, %d images with a size other than annotated\n",
		r.Clipped, r.Merged, r.SizeMismatch)
	fmt.Fprintf(w, "input, by unit (read = kept + skipped):\n")
	for _, u := range units {
		t := r.Units[u]
		if t == nil || t.Read == 0 {
			continue
		}
		fmt.Fprintf(w, "  %-10s %10d = %10d + %8d\n", u, t.Read, t.Kept, t.SkippedTotal())
	}
	skippedSome := false
	for _, u := range units {
		if t := r.Units[u]; t != nil && t.SkippedTotal() > 0 {
			skippedSome = true
		}
	}
	if !skippedSome {
		fmt.Fprintln(w, "skipped: nothing")
	} else {
		fmt.Fprintln(w, "skipped, by unit and reason:")
		for _, u := range units {
			t := r.Units[u]
			if t == nil {
				continue
			}
			reasons := make([]string, 0, len(t.Skipped))
			for k, v := range t.Skipped {
				if v > 0 {
					reasons = append(reasons, k)
				}
			}
			sort.Strings(reasons)
			for _, k := range reasons {
				fmt.Fprintf(w, "  %-10s %-27s %8d", u, k, t.Skipped[k])
				if ex := r.Examples[u+" "+k]; len(ex) > 0 {
					fmt.Fprintf(w, "   e.g. %s", strings.ToValidUTF8(ex[0], "\uFFFD"))
				}
				fmt.Fprintln(w)
			}
		}
	}
	for _, e := range r.FileErrors {
		fmt.Fprintln(w, "file error:", e)
	}
}

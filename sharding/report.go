package sharding

import (
	"fmt"
	"io"
	"sort"
	"sync"
)

// Reasons an annotation or image is left out (Report.Skipped keys). Each is
// counted in the unit its name starts with: files, records, annotations,
// images, texts, boxes or objects. docs/data.md explains the policy.
const (
	SkipFileMissing         = "file_missing"             // an expected annotation file is absent
	SkipFileMalformed       = "file_malformed"           // invalid JSON: the whole file is left out
	SkipRecordMalformed     = "record_malformed"         // valid JSON of the wrong shape (e.g. a string id)
	SkipAnnotationNoImage   = "annotation_unknown_image" // caption/instance/region/object for an image no image list has
	SkipImageDuplicate      = "image_duplicate"          // an image id listed twice (the first is kept)
	SkipImageMissing        = "image_missing"            // the image file is not on disk
	SkipImageCorrupt        = "image_corrupt"            // the file does not decode as a JPEG (truncated, garbage)
	SkipImageNoText         = "image_no_text"            // no usable caption or region is left
	SkipTextEmpty           = "text_empty"               // caption or region phrase empty after trimming
	SkipTextDuplicate       = "text_duplicate_id"        // caption or region id seen twice for the image
	SkipBoxOutside          = "box_outside"              // box entirely outside the image, or degenerate (< 1 px)
	SkipObjectCrowd         = "object_crowd"             // COCO iscrowd=1: a group, not an object
	SkipObjectCategory      = "object_unknown_category"  // COCO category id not in the categories list
	SkipObjectOutOfVocab    = "object_out_of_vocab"      // no name of the VG object is in the class vocabulary
	SkipAttributeOutOfVocab = "attribute_out_of_vocab"   // attribute not among the kept ones
)

// Report says what an import did besides writing samples: what it skipped
// and why, what it repaired, and which files it could not use.
type Report struct {
	mu sync.Mutex

	Skipped      map[string]int64    `json:"skipped"`
	Examples     map[string][]string `json:"examples,omitempty"` // up to 3 per reason: file and byte, or sample key
	Clipped      int64               `json:"clipped"`            // boxes partly outside the image, clipped to it
	Merged       int64               `json:"merged"`             // VG objects merged into the same COCO object
	SizeMismatch int64               `json:"size_mismatch"`      // images whose pixels differ from the annotated size
	FileErrors   []string            `json:"file_errors,omitempty"`
	ShardsKept   int                 `json:"shards_kept"`    // finished shards found valid and reused
	ShardsBuilt  int                 `json:"shards_written"` // shards written by this run
}

func newReport() *Report {
	return &Report{Skipped: map[string]int64{}, Examples: map[string][]string{}}
}

// skip counts n items left out for reason; example (may be "") names one.
func (r *Report) skip(reason string, n int64, example string) {
	if n == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Skipped[reason] += n
	if example != "" && len(r.Examples[reason]) < 3 {
		r.Examples[reason] = append(r.Examples[reason], example)
	}
}

func (r *Report) fileError(reason, msg string) {
	r.skip(reason, 1, "")
	r.mu.Lock()
	defer r.mu.Unlock()
	r.FileErrors = append(r.FileErrors, msg)
}

// merge adds o's counts into r.
func (r *Report) merge(o *Report) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, v := range o.Skipped {
		r.Skipped[k] += v
	}
	for k, v := range o.Examples {
		for _, e := range v {
			if len(r.Examples[k]) < 3 {
				r.Examples[k] = append(r.Examples[k], e)
			}
		}
	}
	r.Clipped += o.Clipped
	r.Merged += o.Merged
	r.SizeMismatch += o.SizeMismatch
}

// WriteSummary prints the report for people.
func (r *Report) WriteSummary(w io.Writer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(w, "shards: %d written, %d kept from a previous run\n", r.ShardsBuilt, r.ShardsKept)
	fmt.Fprintf(w, "repaired: %d boxes clipped to the image, %d VG objects merged into COCO ones, %d images with a size other than annotated\n",
		r.Clipped, r.Merged, r.SizeMismatch)
	if len(r.Skipped) == 0 {
		fmt.Fprintln(w, "skipped: nothing")
	} else {
		fmt.Fprintln(w, "skipped, by reason:")
		reasons := make([]string, 0, len(r.Skipped))
		for k := range r.Skipped {
			reasons = append(reasons, k)
		}
		sort.Strings(reasons)
		for _, k := range reasons {
			fmt.Fprintf(w, "  %-26s %10d", k, r.Skipped[k])
			if ex := r.Examples[k]; len(ex) > 0 {
				fmt.Fprintf(w, "   e.g. %s", ex[0])
			}
			fmt.Fprintln(w)
		}
	}
	for _, e := range r.FileErrors {
		fmt.Fprintln(w, "file error:", e)
	}
}

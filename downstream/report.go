package downstream

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"github.com/e2evlp/vlp/sharding"
)

// Units an import accounts for: every item read is kept or skipped for
// exactly one reason (Report).
const (
	UnitFile       = sharding.UnitFile  // annotation files (kept: used)
	UnitImage      = sharding.UnitImage // image files (VQA, NLVR2), image entries (Karpathy)
	UnitImageFile  = "image_file"       // the image files of Karpathy entries
	UnitQuestion   = "question"         // VQA questions
	UnitAnnotation = "annotation"       // VQA annotations (one per question)
	UnitExample    = "example"          // NLVR2 lines
	UnitSentence   = "sentence"         // Karpathy sentences
)

// Reasons an item is left out. Those the shard importer has too keep its
// names (docs/data.md); the rest are the fine-tuning formats' own.
const (
	SkipRecordMalformed = sharding.SkipRecordMalformed // valid JSON of the wrong shape, or (JSON lines) not JSON
	SkipRecordTooLarge  = sharding.SkipRecordTooLarge  // longer than Limits.MaxRecordBytes
	SkipDuplicate       = sharding.SkipDuplicate       // an identical copy of an item already counted
	SkipIDConflict      = sharding.SkipIDConflict      // items sharing an id but differing: none is kept
	SkipTextEmpty       = sharding.SkipTextEmpty
	SkipTextInvalidUTF8 = sharding.SkipTextInvalidUTF8
	SkipTextTooLong     = sharding.SkipTextTooLong
	SkipImageMissing    = sharding.SkipImageMissing
	SkipImageTooLarge   = sharding.SkipImageTooLarge
	SkipImageCorrupt    = sharding.SkipImageCorrupt
	SkipImageNoText     = sharding.SkipImageNoText // a Karpathy image with no usable sentence

	SkipImageUnusable        = "image_unusable"              // a question, example or entry whose image file was skipped (counted under image or image_file)
	SkipNoAnnotation         = "question_no_annotation"      // a VQA question with no usable annotation (when annotations are read)
	SkipAnnotationNoQuestion = "annotation_unknown_question" // a VQA annotation of a question no usable question has
	SkipAnswerCount          = "answers_count"               // no human answer, or more than Limits.MaxAnswers
	SkipBadAnswer            = "answer_unusable"             // one of the human answers is empty, too long or invalid UTF-8
	SkipBadIdentifier        = "identifier_malformed"        // an NLVR2 identifier not split-set-pair-sentence
	SkipBadLabel             = "label_malformed"             // an NLVR2 label other than true / false
	SkipBadSplit             = "split_unknown"               // a Karpathy split other than train, val, test, restval
	SkipQuestionLeftOut      = "question_left_out"           // a VQA annotation whose question was skipped (counted under question)
	SkipImageLeftOut         = "image_left_out"              // a Karpathy sentence whose image was skipped (counted under image)
	SkipUnsafePath           = "path_unsafe"                 // an image file name that is absolute or leaves its directory
)

// Report says what an import read, kept and skipped, and why.
type Report struct {
	// Units accounts for every item read, by unit: read = kept + skipped.
	Units map[string]*sharding.Tally `json:"units"`
	// Examples holds up to 3 examples per "unit reason": where the item was
	// (file and byte offset or line, or its id) and what is wrong.
	Examples map[string][]string `json:"examples,omitempty"`
	order    []string
}

func newReport() *Report {
	return &Report{Units: map[string]*sharding.Tally{}, Examples: map[string][]string{}}
}

func (r *Report) unit(u string) *sharding.Tally {
	t := r.Units[u]
	if t == nil {
		t = &sharding.Tally{Skipped: map[string]int64{}}
		r.Units[u] = t
		r.order = append(r.order, u)
	}
	return t
}

func (r *Report) read(u string, n int64) { r.unit(u).Read += n }
func (r *Report) kept(u string, n int64) { r.unit(u).Kept += n }

// skip counts n items of unit u left out for reason, with an example.
func (r *Report) skip(u, reason string, n int64, example string) {
	if n == 0 {
		return
	}
	r.unit(u).Skipped[reason] += n
	key := u + " " + reason
	if example != "" && len(r.Examples[key]) < 3 {
		const maxExample = 300 // an example may quote a hostile text
		if len(example) > maxExample {
			example = strings.ToValidUTF8(example[:maxExample], "") + "…"
		}
		r.Examples[key] = append(r.Examples[key], strings.ToValidUTF8(example, "\uFFFD"))
	}
}

// readSkip counts one item read and skipped.
func (r *Report) readSkip(u, reason, example string) {
	r.read(u, 1)
	r.skip(u, reason, 1, example)
}

// Skipped sums the skips of unit u by reason (nil when none).
func (r *Report) Skipped(u string) map[string]int64 {
	if t := r.Units[u]; t != nil {
		return t.Skipped
	}
	return nil
}

// Balanced returns an error naming the first unit whose Read is not Kept
// plus its skips.
func (r *Report) Balanced() error {
	units := make([]string, 0, len(r.Units))
	for u := range r.Units {
		units = append(units, u)
	}
	sort.Strings(units)
	for _, u := range units {
		t := r.Units[u]
		if t.Read != t.Kept+t.SkippedTotal() {
			return fmt.Errorf("downstream: %s: read %d != kept %d + skipped %d %v", u, t.Read, t.Kept, t.SkippedTotal(), t.Skipped)
		}
	}
	return nil
}

// WriteSummary prints the report for people.
func (r *Report) WriteSummary(w io.Writer) {
	order := r.order
	if len(order) != len(r.Units) { // a Report decoded from JSON has no order
		order = order[:0:0]
		for u := range r.Units {
			order = append(order, u)
		}
		sort.Strings(order)
	}
	fmt.Fprintf(w, "input, by unit (read = kept + skipped):\n")
	for _, u := range order {
		t := r.Units[u]
		fmt.Fprintf(w, "  %-10s %10d = %10d + %8d\n", u, t.Read, t.Kept, t.SkippedTotal())
	}
	some := false
	for _, u := range order {
		t := r.Units[u]
		reasons := make([]string, 0, len(t.Skipped))
		for k, v := range t.Skipped {
			if v > 0 {
				reasons = append(reasons, k)
			}
		}
		slices.Sort(reasons)
		for _, k := range reasons {
			if !some {
				fmt.Fprintln(w, "skipped, by unit and reason:")
				some = true
			}
			fmt.Fprintf(w, "  %-10s %-27s %8d", u, k, t.Skipped[k])
			if ex := r.Examples[u+" "+k]; len(ex) > 0 {
				fmt.Fprintf(w, "   e.g. %s", ex[0])
			}
			fmt.Fprintln(w)
		}
	}
	if !some {
		fmt.Fprintln(w, "skipped: nothing")
	}
}

package downstream

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
)

// NLVR2Config names the files of one NLVR2 split.
type NLVR2Config struct {
	// File is the split's JSON-lines file (train.json, dev.json, test1.json).
	File string
	// ImageDir is the split's image directory; an example's images are
	// ImageDir/[directory/]<split>-<set>-<pair>-img0.png and …-img1.png, the
	// directory level only where the line names one (the train split).
	// "" leaves the images unchecked and the paths empty.
	ImageDir string
	Limits   Limits
}

// Validate checks c.
func (c NLVR2Config) Validate() error {
	if c.File == "" {
		return fmt.Errorf("%w: NLVR2Config.File is empty", ErrInvalidConfig)
	}
	return c.Limits.Validate()
}

// NLVR2Example is one statement about one pair of images.
type NLVR2Example struct {
	// Identifier is split-set_id-pair_id-sentence_id; the same sentence
	// is written about several pairs of a set (the consistency metric
	// groups by identifier with pair_id left out).
	Identifier string `json:"identifier"`
	Split      string `json:"split"`
	SetID      string `json:"set_id"`
	PairID     int    `json:"pair_id"`
	SentenceID int    `json:"sentence_id"`
	Sentence   string `json:"sentence"`
	Label      bool   `json:"label"`    // the sentence is true of the pair
	Labelled   bool   `json:"labelled"` // false on a split without labels: Label means nothing
	Left       string `json:"left,omitempty"`
	Right      string `json:"right,omitempty"` // image paths; "" when not checked
	LeftURL    string `json:"left_url,omitempty"`
	RightURL   string `json:"right_url,omitempty"`
}

// NLVR2Set is one imported split, in file order.
type NLVR2Set struct {
	Examples []NLVR2Example `json:"examples"`
}

type nlvr2In struct {
	Identifier text            `json:"identifier"`
	Sentence   text            `json:"sentence"`
	Label      json.RawMessage `json:"label"`
	LeftURL    text            `json:"left_url"`
	RightURL   text            `json:"right_url"`
	Directory  json.RawMessage `json:"directory"`
}

// ImportNLVR2 reads one split. Each line stands alone, so a line that is
// not a JSON object is skipped and counted (record_malformed, with its
// line number) rather than failing the file.
func ImportNLVR2(cfg NLVR2Config) (*NLVR2Set, *Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	lim := cfg.Limits.WithDefaults()
	rep := newReport()
	lr, err := openLines(cfg.File, lim)
	if err != nil {
		return nil, rep, err
	}
	defer lr.Close()

	examples := newDedup[string, nlvr2In]()
	for {
		line, tooLarge, err := lr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, rep, err
		}
		if tooLarge {
			rep.readSkip(UnitExample, SkipRecordTooLarge, fmt.Sprintf("%s: longer than %d bytes", lr.where(), lim.MaxRecordBytes))
			continue
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue // blank lines are not records
		}
		var in nlvr2In
		if err := json.Unmarshal(line, &in); err != nil || !bytes.HasPrefix(bytes.TrimSpace(line), []byte("{")) {
			rep.readSkip(UnitExample, SkipRecordMalformed, fmt.Sprintf("%s: not a JSON object: %v", lr.where(), err))
			continue
		}
		if in.Identifier.Bad || in.Identifier.S == "" {
			rep.readSkip(UnitExample, SkipBadIdentifier, lr.where()+": identifier missing or not valid UTF-8")
			continue
		}
		rep.read(UnitExample, 1)
		if err := examples.add(in.Identifier.S, in, lr.where()); err != nil {
			return nil, rep, err
		}
	}
	rep.read(UnitFile, 1)
	rep.kept(UnitFile, 1)

	images := newImageChecker(lim, rep, UnitImage)
	set := &NLVR2Set{}
	for _, id := range examples.order {
		c := examples.items[id]
		if !settle(rep, UnitExample, c, id) {
			continue
		}
		ex, reason, detail := nlvr2Example(&c.rec, lim)
		if reason != "" {
			rep.skip(UnitExample, reason, 1, c.where+": "+detail)
			continue
		}
		if cfg.ImageDir != "" {
			dir, reason := nlvr2Directory(c.rec.Directory)
			if reason != "" {
				rep.skip(UnitExample, SkipRecordMalformed, 1, c.where+": "+reason)
				continue
			}
			stem := fmt.Sprintf("%s-%s-%d", ex.Split, ex.SetID, ex.PairID)
			ex.Left = filepath.Join(cfg.ImageDir, dir, stem+"-img0.png")
			ex.Right = filepath.Join(cfg.ImageDir, dir, stem+"-img1.png")
			// Both images are checked, so both are counted under image.
			l, r := images.check(ex.Left), images.check(ex.Right)
			if l != "" || r != "" {
				rep.skip(UnitExample, SkipImageUnusable, 1, fmt.Sprintf("%s: %s", c.where, stem))
				continue
			}
		}
		rep.kept(UnitExample, 1)
		set.Examples = append(set.Examples, ex)
	}
	if err := rep.Balanced(); err != nil {
		return nil, rep, err
	}
	if len(set.Examples) == 0 {
		return nil, rep, fmt.Errorf("%w: %s", ErrNothingUsable, cfg.File)
	}
	return set, rep, nil
}

// nlvr2Example checks one line's fields.
func nlvr2Example(in *nlvr2In, lim Limits) (NLVR2Example, string, string) {
	ex := NLVR2Example{Identifier: in.Identifier.S}
	parts := strings.Split(ex.Identifier, "-")
	ok := len(parts) == 4
	for _, p := range parts {
		ok = ok && plainName(p)
	}
	if ok {
		var err1, err2 error
		ex.PairID, err1 = strconv.Atoi(parts[2])
		ex.SentenceID, err2 = strconv.Atoi(parts[3])
		ok = err1 == nil && err2 == nil && ex.PairID >= 0 && ex.SentenceID >= 0
	}
	if !ok {
		return ex, SkipBadIdentifier, fmt.Sprintf("identifier %q is not split-set_id-pair_id-sentence_id", ex.Identifier)
	}
	ex.Split, ex.SetID = parts[0], parts[1]
	s, reason, detail := cleanText(in.Sentence, lim.MaxTextBytes)
	if reason != "" {
		return ex, reason, detail
	}
	ex.Sentence = s
	for _, f := range []struct {
		t   text
		out *string
	}{{in.LeftURL, &ex.LeftURL}, {in.RightURL, &ex.RightURL}} {
		if reason, detail := checkText(f.t, lim.MaxTextBytes); reason != "" {
			return ex, reason, "url: " + detail
		}
		*f.out = f.t.S
	}
	switch label := strings.ToLower(string(in.Label)); label {
	case "", "null":
	case `"true"`, "true":
		ex.Label, ex.Labelled = true, true
	case `"false"`, "false":
		ex.Labelled = true
	default:
		return ex, SkipBadLabel, fmt.Sprintf("label %.40s", in.Label)
	}
	return ex, "", ""
}

// nlvr2Directory reads the train split's "directory" (a number, or a
// string of digits): the subdirectory of its images.
func nlvr2Directory(raw json.RawMessage) (string, string) {
	s := strings.Trim(string(raw), `"`)
	if len(raw) == 0 || s == "null" {
		return "", ""
	}
	if n, err := strconv.Atoi(s); err != nil || n < 0 {
		return "", fmt.Sprintf("directory %.40s is not a number", raw)
	}
	return s, ""
}

// plainName reports whether s is a non-empty run of ASCII letters and
// digits: safe inside a file name.
func plainName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

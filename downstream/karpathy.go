package downstream

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
)

// KarpathyConfig names a Karpathy-split file (dataset_coco.json,
// dataset_flickr30k.json, dataset_flickr8k.json).
type KarpathyConfig struct {
	File string
	// ImageDir holds the images: ImageDir/<filepath>/<filename> (COCO's
	// entries name a filepath, train2014 or val2014; Flickr's do not). ""
	// leaves the images unchecked and the paths empty.
	ImageDir string
	Limits   Limits
}

// Validate checks c.
func (c KarpathyConfig) Validate() error {
	if c.File == "" {
		return fmt.Errorf("%w: KarpathyConfig.File is empty", ErrInvalidConfig)
	}
	return c.Limits.Validate()
}

// The Karpathy splits. Training on "train" and "restval" together is the
// usual practice for COCO (113,287 images), testing on the 5,000 of "test".
const (
	SplitTrain   = "train"
	SplitVal     = "val"
	SplitTest    = "test"
	SplitRestval = "restval"
)

// KarpathyImage is one image with its reference sentences.
type KarpathyImage struct {
	ImgID     int64              `json:"imgid"`
	CocoID    uint64             `json:"cocoid,omitempty"` // COCO's image id; 0 for Flickr
	FilePath  string             `json:"filepath,omitempty"`
	FileName  string             `json:"filename"`
	Image     string             `json:"image,omitempty"` // the image's path; "" when not checked
	Split     string             `json:"split"`
	Sentences []KarpathySentence `json:"sentences"`
}

// KarpathySentence is one reference caption: as written (Raw, white space
// collapsed) and as the split's tokens (lower case, no punctuation).
type KarpathySentence struct {
	SentID int64    `json:"sentid"`
	Raw    string   `json:"raw"`
	Tokens []string `json:"tokens"`
}

// KarpathySet is one imported file, images in file order.
type KarpathySet struct {
	Dataset string          `json:"dataset"` // "coco", "flickr30k", …
	Images  []KarpathyImage `json:"images"`
}

// Split returns the images of the named splits, in file order.
func (s *KarpathySet) Split(names ...string) []KarpathyImage {
	var out []KarpathyImage
	for _, im := range s.Images {
		for _, n := range names {
			if im.Split == n {
				out = append(out, im)
				break
			}
		}
	}
	return out
}

type (
	karpathyImageIn struct {
		ImgID     *int64               `json:"imgid"`
		CocoID    *uint64              `json:"cocoid"`
		FilePath  text                 `json:"filepath"`
		FileName  text                 `json:"filename"`
		Split     text                 `json:"split"`
		Sentences []karpathySentenceIn `json:"sentences"`
	}
	karpathySentenceIn struct {
		SentID *int64 `json:"sentid"`
		Raw    text   `json:"raw"`
		Tokens []text `json:"tokens"`
	}
)

// karpathySentenceOf is one sentence and the image that names it, for the
// duplicate rule across images.
type karpathySentenceOf struct {
	Img int64
	S   karpathySentenceIn
}

// ImportKarpathy reads a Karpathy-split file. An image is kept when it is
// well formed, its imgid is not ambiguous, its file name is a plain
// relative path, its split is known, at least one of its sentences is
// usable and (when ImageDir is given) its image is.
func ImportKarpathy(cfg KarpathyConfig) (*KarpathySet, *Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	lim := cfg.Limits.WithDefaults()
	rep := newReport()
	set := &KarpathySet{}

	j, err := openJSON(cfg.File, lim)
	if err != nil {
		return nil, rep, err
	}
	defer j.Close()
	images := newDedup[int64, karpathyImageIn]()
	seen := false
	err = j.object(map[string]func() error{
		"dataset": func() error {
			raw, off, over, err := j.value(1 << 10)
			if err != nil {
				return err
			}
			var t text
			if over || json.Unmarshal(raw, &t) != nil || t.Bad {
				return j.errAt(off, "dataset is not a string")
			}
			set.Dataset = t.S
			return nil
		},
		"images": func() error {
			seen = true
			return j.array(func(e element) error {
				var im karpathyImageIn
				if bad := decodeRecord(j, e, &im, rep, UnitImage); bad {
					return nil
				}
				if im.ImgID == nil {
					rep.readSkip(UnitImage, SkipRecordMalformed, j.where(e)+": imgid missing")
					return nil
				}
				rep.read(UnitImage, 1)
				return images.add(*im.ImgID, im, j.where(e))
			})
		},
	})
	if err != nil {
		return nil, rep, err
	}
	if !seen {
		return nil, rep, fmt.Errorf("%w: %s: no \"images\" array", ErrMalformed, cfg.File)
	}
	rep.read(UnitFile, 1)
	rep.kept(UnitFile, 1)

	// Sentence ids are dataset-wide: copies under one id are judged over
	// every image that survived its own duplicate rule.
	sentences := newDedup[int64, karpathySentenceOf]()
	for _, id := range images.order {
		c := images.items[id]
		if c.conflict {
			continue
		}
		for _, s := range c.rec.Sentences {
			if s.SentID != nil {
				if err := sentences.add(*s.SentID, karpathySentenceOf{Img: id, S: s}, c.where); err != nil {
					return nil, rep, err
				}
			}
		}
	}

	checker := newImageChecker(lim, rep, UnitImageFile)
	for _, id := range images.order {
		c := images.items[id]
		if !settle(rep, UnitImage, c, id) {
			// The sentences of ambiguous copies are not read.
			continue
		}
		im, reason, detail := karpathyImage(&c.rec, id)
		var sents []KarpathySentence
		if reason == "" {
			sents = karpathySentences(&c.rec, sentences, rep, c.where, lim)
			if len(sents) == 0 {
				reason, detail = SkipImageNoText, "no usable sentence"
			}
		} else {
			rep.read(UnitSentence, int64(len(c.rec.Sentences)))
			rep.skip(UnitSentence, SkipImageLeftOut, int64(len(c.rec.Sentences)), c.where)
		}
		if reason == "" && cfg.ImageDir != "" {
			im.Image = filepath.Join(cfg.ImageDir, im.FilePath, im.FileName)
			// The file is counted by the checker, under UnitImageFile.
			if checker.check(im.Image) != "" {
				reason, detail = SkipImageUnusable, im.Image
			}
		}
		if reason != "" {
			rep.skip(UnitImage, reason, 1, c.where+": "+detail)
			if len(sents) > 0 {
				rep.skip(UnitSentence, SkipImageLeftOut, int64(len(sents)), c.where)
			}
			continue
		}
		im.Sentences = sents
		rep.kept(UnitImage, 1)
		rep.kept(UnitSentence, int64(len(sents)))
		set.Images = append(set.Images, im)
	}
	if err := rep.Balanced(); err != nil {
		return nil, rep, err
	}
	if len(set.Images) == 0 {
		return nil, rep, fmt.Errorf("%w: %s", ErrNothingUsable, cfg.File)
	}
	return set, rep, nil
}

// karpathyImage checks an entry's own fields.
func karpathyImage(in *karpathyImageIn, id int64) (KarpathyImage, string, string) {
	im := KarpathyImage{ImgID: id}
	if in.CocoID != nil {
		im.CocoID = *in.CocoID
	}
	for _, t := range []text{in.FilePath, in.FileName, in.Split} {
		if t.Bad {
			return im, SkipTextInvalidUTF8, "filepath, filename or split is not valid UTF-8"
		}
	}
	im.FilePath, im.FileName, im.Split = in.FilePath.S, in.FileName.S, in.Split.S
	if !safeRelPath(im.FilePath, true) || !safeRelPath(im.FileName, false) {
		return im, SkipUnsafePath, fmt.Sprintf("filepath %q, filename %q", im.FilePath, im.FileName)
	}
	switch im.Split {
	case SplitTrain, SplitVal, SplitTest, SplitRestval:
	default:
		return im, SkipBadSplit, fmt.Sprintf("split %q", im.Split)
	}
	return im, "", ""
}

// karpathySentences returns an image's usable sentences and accounts for
// every one of them under UnitSentence.
func karpathySentences(in *karpathyImageIn, all *dedup[int64, karpathySentenceOf], rep *Report, where string, lim Limits) []KarpathySentence {
	var out []KarpathySentence
	done := map[int64]bool{} // sentence ids settled under this image
	for k, s := range in.Sentences {
		rep.read(UnitSentence, 1)
		at := fmt.Sprintf("%s: sentence %d", where, k)
		if s.SentID == nil {
			rep.skip(UnitSentence, SkipRecordMalformed, 1, at+": sentid missing")
			continue
		}
		id := *s.SentID
		c := all.items[id]
		if c.conflict {
			rep.skip(UnitSentence, SkipIDConflict, 1, fmt.Sprintf("%s: sentid %d", at, id))
			continue
		}
		if done[id] || c.where != where {
			// A repeat within this image, or a copy of one another image
			// holds (identical, so the same image id too: counted there).
			rep.skip(UnitSentence, SkipDuplicate, 1, fmt.Sprintf("%s: sentid %d", at, id))
			continue
		}
		done[id] = true
		raw, reason, detail := cleanText(s.Raw, lim.MaxTextBytes)
		if reason != "" {
			rep.skip(UnitSentence, reason, 1, at+": "+detail)
			continue
		}
		tokens := make([]string, 0, len(s.Tokens))
		for _, t := range s.Tokens {
			if reason, detail = checkText(t, lim.MaxTextBytes); reason != "" {
				break
			}
			if w := strings.TrimSpace(t.S); w != "" {
				tokens = append(tokens, w)
			}
		}
		if reason == "" && len(tokens) == 0 {
			reason, detail = SkipTextEmpty, "no tokens"
		}
		if reason != "" {
			rep.skip(UnitSentence, reason, 1, at+": tokens: "+detail)
			continue
		}
		out = append(out, KarpathySentence{SentID: id, Raw: raw, Tokens: tokens})
	}
	return out
}

// safeRelPath reports whether p is a relative path that stays inside its
// directory: no absolute path, no "..", no empty or odd element. dir
// allows "" and several elements; a file name must be one element.
func safeRelPath(p string, dir bool) bool {
	if p == "" {
		return dir
	}
	if strings.ContainsAny(p, "\\\x00") || filepath.IsAbs(p) {
		return false
	}
	elems := strings.Split(p, "/")
	if !dir && len(elems) != 1 {
		return false
	}
	for _, e := range elems {
		if e == "" || e == "." || e == ".." {
			return false
		}
	}
	return true
}

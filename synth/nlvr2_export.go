package synth

import (
	"bytes"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strconv"
)

// NLVR2's line record, with the fields its readers use.
type nlvr2Out struct {
	Validation       map[string]string `json:"validation"`
	Sentence         string            `json:"sentence"`
	LeftURL          string            `json:"left_url"`
	Writer           string            `json:"writer"`
	Label            string            `json:"label"`
	RightURL         string            `json:"right_url"`
	Synset           string            `json:"synset"`
	Query            string            `json:"query"`
	Identifier       string            `json:"identifier"`
	ExtraValidations map[string]string `json:"extra_validations"`
	Directory        *int              `json:"directory,omitempty"` // train only
}

// NLVR2's splits, in the order sets are given to them.
var NLVR2Splits = []string{"train", "dev", "test1"}

// Images per NLVR2 set, pairs per set, sentences per set.
const (
	nlvr2SetImages    = 8
	nlvr2SetPairs     = 4
	nlvr2SetSentences = 2
)

// NLVR2Stats counts what ExportNLVR2 wrote.
type NLVR2Stats struct {
	Sets, Examples, True map[string]int // by split
}

// ExportNLVR2 writes the world as NLVR2: images in sets of eight (images
// 8s … 8s+7 form set s, its pairs (8s, 8s+1), …), two sentences per set,
// each paired with all four pairs of the set and labelled for each. In
// dir: train.json, dev.json, test1.json (one JSON object per line) and the
// images as PNG, images/train/<directory>/train-<set>-<pair>-img0.png
// (directory = set mod 100, named in the train lines as NLVR2 does) and
// images/dev/dev-<set>-<pair>-img1.png, …. The last HeldOut of the sets
// are dev then test1.
func ExportNLVR2(cfg FinetuneConfig, dir string) (NLVR2Stats, error) {
	if err := cfg.Validate(); err != nil {
		return NLVR2Stats{}, err
	}
	cfg = cfg.WithDefaults()
	st := NLVR2Stats{Sets: map[string]int{}, Examples: map[string]int{}, True: map[string]int{}}
	sets := cfg.World.Images / nlvr2SetImages
	if sets < 1 {
		return st, fmt.Errorf("%w: NLVR2 needs at least %d images, World.Images is %d", ErrInvalidConfig, nlvr2SetImages, cfg.World.Images)
	}
	train, devEnd := cfg.heldOut(sets)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return st, err
	}
	lines := map[string]*jsonLines{}
	for _, split := range NLVR2Splits {
		l, err := createLines(filepath.Join(dir, split+".json"))
		if err != nil {
			return st, err
		}
		lines[split] = l
	}
	var group []Picture
	err := renderEach(cfg, sets*nlvr2SetImages, func(p Picture) ([]byte, error) {
		var buf bytes.Buffer
		err := png.Encode(&buf, p.Image)
		return buf.Bytes(), err
	}, func(p Picture, data []byte) error {
		set := p.Index / nlvr2SetImages
		split := NLVR2Splits[0]
		switch {
		case set >= devEnd:
			split = NLVR2Splits[2]
		case set >= train:
			split = NLVR2Splits[1]
		}
		imgDir := filepath.Join(dir, "images", split)
		var directory *int
		if split == "train" {
			d := set % 100
			directory = &d
			imgDir = filepath.Join(imgDir, strconv.Itoa(d))
		}
		pair := p.Index % nlvr2SetImages / 2
		name := fmt.Sprintf("%s-%d-%d-img%d.png", split, set, pair, p.Index%2)
		if err := os.MkdirAll(imgDir, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(imgDir, name), data, 0o644); err != nil {
			return err
		}
		group = append(group, Picture{Index: p.Index, Objects: p.Objects}) // the pixels are written
		if len(group) < nlvr2SetImages {
			return nil
		}
		var left, right []Picture
		for k := 0; k < nlvr2SetPairs; k++ {
			left, right = append(left, group[2*k]), append(right, group[2*k+1])
		}
		group = group[:0]
		st.Sets[split]++
		for s := 0; s < nlvr2SetSentences; s++ {
			stmt := NLVR2Statement(left, right, cfg.World.Seed, set, s)
			for k, label := range stmt.Labels {
				stem := fmt.Sprintf("%s-%d-%d", split, set, k)
				rec := nlvr2Out{
					Validation: map[string]string{}, ExtraValidations: map[string]string{},
					Sentence: stmt.Sentence, Writer: "synth",
					LeftURL: "synth:" + stem + "-img0.png", RightURL: "synth:" + stem + "-img1.png",
					Identifier: fmt.Sprintf("%s-%d", stem, s), Directory: directory,
				}
				if label {
					rec.Label = "True"
					st.True[split]++
				} else {
					rec.Label = "False"
				}
				if err := lines[split].add(rec); err != nil {
					return err
				}
				st.Examples[split]++
			}
		}
		return nil
	})
	for _, l := range lines {
		if cerr := l.close(); err == nil {
			err = cerr
		}
	}
	return st, err
}

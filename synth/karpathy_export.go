package synth

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// The Karpathy split's records (dataset_coco.json), field for field.
type (
	karpathySentenceOut struct {
		Tokens []string `json:"tokens"`
		Raw    string   `json:"raw"`
		ImgID  int      `json:"imgid"`
		SentID int      `json:"sentid"`
	}
	karpathyImageOut struct {
		FilePath  string                `json:"filepath"`
		SentIDs   []int                 `json:"sentids"`
		FileName  string                `json:"filename"`
		ImgID     int                   `json:"imgid"`
		Split     string                `json:"split"`
		Sentences []karpathySentenceOut `json:"sentences"`
		CocoID    int                   `json:"cocoid"`
	}
)

// KarpathyFile is the file ExportKarpathy writes, as the split's COCO file
// is named.
const KarpathyFile = "dataset_coco.json"

// KarpathyStats counts what ExportKarpathy wrote.
type KarpathyStats struct {
	Images    map[string]int // by split
	Sentences int
}

// KarpathyRaw and KarpathyTokens write a caption as the split's raw and
// tokens fields: "A small red circle." and [a small red circle].
func KarpathyRaw(caption string) string {
	if caption == "" {
		return ""
	}
	return strings.ToUpper(caption[:1]) + caption[1:] + "."
}

// KarpathyTokens lower-cases a caption and drops its punctuation.
func KarpathyTokens(caption string) []string {
	words := strings.Fields(strings.Map(func(r rune) rune {
		if strings.ContainsRune(".,:;!?", r) {
			return ' '
		}
		return r
	}, strings.ToLower(caption)))
	return words
}

// ExportKarpathy writes the world's captions as the Karpathy split of COCO:
// dir/dataset_coco.json and the images, train images in train2014/ and
// val, test and restval images in val2014/ (COCO_<dir>_<cocoid>.jpg), as
// the real split draws restval, val and test from COCO's val2014. The last
// HeldOut of the images are val then test; of the rest, the last Restval
// are restval. Test images are never trained on: retrieval and captioning
// are measured on them.
func ExportKarpathy(cfg FinetuneConfig, dir string) (KarpathyStats, error) {
	if err := cfg.Validate(); err != nil {
		return KarpathyStats{}, err
	}
	cfg = cfg.WithDefaults()
	st := KarpathyStats{Images: map[string]int{}}
	n := cfg.World.Images
	train, valEnd := cfg.heldOut(n)
	restStart := train - int(cfg.Restval*float64(train)+0.5)
	for _, d := range []string{"train2014", "val2014"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return st, err
		}
	}
	arr, err := createArray(filepath.Join(dir, KarpathyFile), `{"images":`)
	if err != nil {
		return st, err
	}
	err = renderEach(cfg, n, func(p Picture) ([]byte, error) { return EncodeJPEG(p.Image) }, func(p Picture, jpg []byte) error {
		i := p.Index
		split, folder := "train", "train2014"
		switch {
		case i >= valEnd:
			split, folder = "test", "val2014"
		case i >= train:
			split, folder = "val", "val2014"
		case i >= restStart:
			split, folder = "restval", "val2014"
		}
		cocoID := i + 1
		name := fmt.Sprintf("COCO_%s_%012d.jpg", folder, cocoID)
		if err := os.WriteFile(filepath.Join(dir, folder, name), jpg, 0o644); err != nil {
			return err
		}
		rec := karpathyImageOut{FilePath: folder, FileName: name, ImgID: i, Split: split, CocoID: cocoID}
		for k, c := range p.Captions {
			sid := i*cfg.World.Captions + k
			rec.SentIDs = append(rec.SentIDs, sid)
			rec.Sentences = append(rec.Sentences, karpathySentenceOut{Tokens: KarpathyTokens(c), Raw: KarpathyRaw(c), ImgID: i, SentID: sid})
		}
		st.Images[split]++
		st.Sentences += len(rec.Sentences)
		return arr.add(rec)
	})
	if cerr := arr.close(`,"dataset":"coco"}`); err == nil {
		err = cerr
	}
	return st, err
}

package eval

import "strconv"

// Report is what Evaluate measures on a held-out set. Counts come with
// every accuracy so that a reader can judge its noise.
type Report struct {
	Images     int           `json:"images"`
	Checkpoint CheckpointRef `json:"checkpoint"` // filled by the caller
	// ColourMLM: one colour word of each image's text masked, the others
	// shown (the learning test's measure); the encoder must restore it,
	// and only the pixels tell it. ColourMLMAll: every colour word masked
	// at once, so that none can be had by excluding another named one.
	ColourMLM    Accuracy `json:"colour_mlm"`
	ColourMLMAll Accuracy `json:"colour_mlm_all"`
	// ITM: each row's text is its own or, half the time, another image's
	// or its own with a colour swapped; the model says which.
	ITM        Accuracy           `json:"itm"`
	Detection  COCOStats          `json:"detection"`
	ClassAP    map[string]float64 `json:"class_ap"` // AP per class name; -1: no ground truth
	Attributes AttributeAccuracy  `json:"attributes"`
	// DroppedObjects are ground-truth objects of classes the model does
	// not know, left out.
	DroppedObjects int            `json:"dropped_objects"`
	Greedy         CaptionScores  `json:"captions_greedy"`
	Beam           *CaptionScores `json:"captions_beam,omitempty"` // with Config.Beams > 1
	Retrieval      *Retrieval     `json:"retrieval,omitempty"`     // with Config.Retrieval > 0
	Samples        []Sample       `json:"samples"`
	BoxesPNG       string         `json:"boxes_png,omitempty"`

	// Predictions are what the interoperability files are written from.
	Predictions Predictions `json:"-"`
}

// CheckpointRef names the evaluated checkpoint.
type CheckpointRef struct {
	Store string `json:"store"`
	ID    uint64 `json:"id"`
	Step  int64  `json:"step"`
}

// Accuracy is Correct of Total.
type Accuracy struct {
	Correct int `json:"correct"`
	Total   int `json:"total"`
}

// Rate is Correct/Total (0 with none).
func (a Accuracy) Rate() float64 { return ratio(a.Correct, a.Total) }

// CaptionScores are the captioning metrics over the images that have
// reference captions.
type CaptionScores struct {
	Images int        `json:"images"`
	BLEU   [4]float64 `json:"bleu"` // BLEU-1…4
	CIDErD float64    `json:"cider_d"`
}

// Sample is one image's true caption next to the generated ones, and what each generated one
// is, word for word (case and punctuation aside): one of the image's reference captions (the
// captioning metrics' Refs), one of its region descriptions (a phrase naming one of its
// objects), or neither.
type Sample struct {
	Truth      string    `json:"truth"`
	Greedy     string    `json:"greedy"`
	Beam       string    `json:"beam,omitempty"`
	References int       `json:"references"` // the image's reference captions
	Regions    int       `json:"regions"`    // the image's region descriptions
	GreedyIs   TextMatch `json:"greedy_is"`
	BeamIs     TextMatch `json:"beam_is,omitempty"`
}

// TextMatch is what a generated caption is among an image's texts.
type TextMatch string

const (
	TextIsCaption TextMatch = "caption" // one of its reference captions
	TextIsRegion  TextMatch = "region"  // one of its region descriptions, no reference caption
	TextIsNone    TextMatch = "none"    // neither
)

// Predictions are every image's detections and captions, with the ground
// truth in the same units: boxes in pixels of the original image.
type Predictions struct {
	Images  []ImageInfo
	Classes []string
	Dets    []Detection
	GTs     []GroundTruth
	Greedy  []string // per image
	Beam    []string // per image, with beam search
}

// ImageInfo is one evaluated image.
type ImageInfo struct {
	ID            int
	Width, Height int // original size in pixels
	Key           string
}

// Scalars are the report's numbers by TensorBoard tag.
func (r *Report) Scalars() map[string]float64 {
	s := map[string]float64{
		"eval/colour_mlm_accuracy":     r.ColourMLM.Rate(),
		"eval/colour_mlm_all_accuracy": r.ColourMLMAll.Rate(),
		"eval/itm_accuracy":            r.ITM.Rate(),
		"eval/det/ap":                  r.Detection.AP,
		"eval/det/ap50":                r.Detection.AP50,
		"eval/det/ap75":                r.Detection.AP75,
		"eval/det/ap_small":            r.Detection.APSmall,
		"eval/det/ap_medium":           r.Detection.APMedium,
		"eval/det/ap_large":            r.Detection.APLarge,
		"eval/det/ar1":                 r.Detection.AR1,
		"eval/det/ar10":                r.Detection.AR10,
		"eval/det/ar100":               r.Detection.AR100,
		"eval/det/attr_top1":           r.Attributes.Top1Rate(),
		"eval/det/attr_exact":          r.Attributes.ExactRate(),
	}
	caps := func(prefix string, c CaptionScores) {
		for n, b := range c.BLEU {
			s[prefix+"/bleu"+strconv.Itoa(n+1)] = b
		}
		s[prefix+"/cider_d"] = c.CIDErD
	}
	caps("eval/caption_greedy", r.Greedy)
	if r.Beam != nil {
		caps("eval/caption_beam", *r.Beam)
	}
	if r.Retrieval != nil {
		for k, K := range RetrievalKs {
			s["eval/retrieval/i2t_r"+strconv.Itoa(K)] = r.Retrieval.ImageToText[k]
			s["eval/retrieval/t2i_r"+strconv.Itoa(K)] = r.Retrieval.TextToImage[k]
		}
	}
	return s
}

package sharding

// SampleMeta is the `<key>.json` member of a shard: one image with every text
// that describes it and every object in it. The `<key>.jpg` member beside it
// holds the image bytes. A pair is (image, one Text); an epoch visits every
// pair exactly once.
type SampleMeta struct {
	Key     string   `json:"key"`      // tar member stem, unique in the dataset
	ImageID uint64   `json:"image_id"` // dataset-wide image id
	Source  string   `json:"source"`   // "coco", "vg" or "coco+vg" (an image in both)
	CocoID  uint64   `json:"coco_id,omitempty"`
	VGID    uint64   `json:"vg_id,omitempty"`
	Width   int      `json:"width"`  // original image width in pixels
	Height  int      `json:"height"` // original image height in pixels
	Texts   []Text   `json:"texts"`
	Objects []Object `json:"objects"`
}

// Text is a caption (COCO) or a region description (VG).
type Text struct {
	PairID uint64      `json:"pair_id"` // dataset-wide id of the (image, text) pair
	Kind   string      `json:"kind"`    // "caption" or "region"
	Text   string      `json:"text"`
	Box    *[4]float32 `json:"box,omitempty"` // region box, normalised cx, cy, w, h
}

// Object is one annotated object; Class and Attributes index the manifest's
// vocabularies.
type Object struct {
	Box        [4]float32 `json:"box"` // normalised cx, cy, w, h in [0,1]
	Class      int        `json:"class"`
	Attributes []int      `json:"attributes,omitempty"`
}

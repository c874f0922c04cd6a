package data

// Batch is one training batch in host memory, laid out exactly as the model
// turns it into tensors (row-major, batch first). The pipeline fills it; the
// model package converts it with model.BatchToTensors.
//
// Text rows are `[CLS] w1..wn [SEP] [PAD]…`; image rows are padded to the
// largest image in the batch (bottom/right) and PixelMask marks the padding.
type Batch struct {
	Size   int // B: number of (image, text) rows
	Height int // H: padded image height in pixels
	Width  int // W: padded image width in pixels

	Images    []float32 // [B,3,H,W] ImageNet-normalised RGB; zero in padding
	PixelMask []bool    // [B,H,W] true where the pixel is padding

	SeqLen    int     // L: padded text length, [CLS] and [SEP] included
	TokenIDs  []int64 // [B,L] encoder input ids, MLM masking already applied
	TokenMask []bool  // [B,L] true where the token is padding
	MLMLabels []int64 // [B,L] original id at masked positions, IgnoreIndex elsewhere (and on ITM negatives)
	ITMLabels []int64 // [B] 1: the text describes the image, 0: a mismatched text

	// Detection targets, one per row (rows sharing an image share targets).
	Targets []DetectionTarget // len B

	CapLen      int     // T: padded caption length, [CLS] … [SEP]
	CaptionIDs  []int64 // [B,T] the image's true caption: input is [:, :T-1], target is [:, 1:]
	CaptionMask []bool  // [B,T] true where the caption token is padding

	SampleIDs []uint64 // [B] pair ids (exactly-once accounting)
	ImageIDs  []uint64 // [B] image ids (evaluation, drawing)

	NegKinds []NegKind // [B] how each row's encoder text was chosen (NegNone on positives)

	// SkippedIDs are pair ids this batch consumed but could not use (their
	// image was corrupt); they count as consumed for exactly-once accounting.
	SkippedIDs []uint64
}

// DetectionTarget holds one image's objects. Boxes are normalised
// (cx, cy, w, h) in [0,1] relative to the un-padded image.
type DetectionTarget struct {
	Boxes      [][4]float32 // [N] cx, cy, w, h
	Classes    []int64      // [N] object class index
	Attributes [][]int64    // [N][k] attribute indices (possibly none) of each object
}

// IgnoreIndex marks label positions that no loss looks at (PyTorch's default).
const IgnoreIndex = -100

package model

import (
	"fmt"
	"math"

	"github.com/e2evlp/vlp/data"
	"github.com/e2evlp/vlp/torch"
)

// Retrieval fine-tunes ITM with hard negatives mined in the batch. A batch
// holds B matching image–text pairs (image i, text i). The current model
// scores all B×B combinations with its ITM head; for each image the
// highest-scoring text that does not match it, and for each text the
// highest-scoring image that does not match it, become its negatives. The
// training pass then classifies, with the ITM head, the B positives and up
// to 2B mined negatives as match / no match (cross-entropy, mean over the
// rows): "retrieval".
//
// Mining runs without gradient and in evaluation mode (no dropout,
// BatchNorm's running statistics — a training-mode pass would update them
// a second time), one image against all B texts at a time, so its memory
// is that of a B-row forward whatever B is. A text matches an image when
// it is its own row's, or when the two rows share an image id (a COCO
// image has five captions, and two of them may meet in one batch): such
// pairs are never negatives.

// RetrievalOutput is what RetrievalForward computed.
type RetrievalOutput struct {
	Logits    *torch.Tensor // [R,2] ITM logits: the B positives, then image→hard text, then text→hard image
	Labels    []int64       // [R] 1 on positives, 0 on negatives
	Images    []int         // [R] the batch row whose image each logit row pairs
	Texts     []int         // [R] the batch row whose text each logit row pairs
	HardText  []int         // [B] the mined text of each image, −1 when every text matches it
	HardImage []int         // [B] the mined image of each text, −1 when every image matches it
	Losses    Losses        // "retrieval"
}

// MineHardNegatives picks, from an image×text score matrix (scores[i·B+j]:
// image i with text j, higher = more alike), the highest-scoring
// non-matching text of each image and image of each text; ties go to the
// lower index. Pairs i = j, and pairs whose rows have the same image id
// when imageIDs is not nil, match. −1 marks a row with no candidate.
func MineHardNegatives(scores []float64, b int, imageIDs []uint64) (hardText, hardImage []int, err error) {
	if b < 1 || len(scores) != b*b {
		return nil, nil, fmt.Errorf("%w: hard negatives: %d scores for B = %d", ErrBatch, len(scores), b)
	}
	if imageIDs != nil && len(imageIDs) != b {
		return nil, nil, fmt.Errorf("%w: hard negatives: %d image ids for B = %d", ErrBatch, len(imageIDs), b)
	}
	for k, v := range scores {
		if math.IsNaN(v) {
			return nil, nil, fmt.Errorf("%w: hard negatives: score of image %d, text %d is NaN", ErrBatch, k/b, k%b)
		}
	}
	matches := func(i, j int) bool { return i == j || (imageIDs != nil && imageIDs[i] == imageIDs[j]) }
	hardText, hardImage = make([]int, b), make([]int, b)
	for i := 0; i < b; i++ {
		hardText[i], hardImage[i] = -1, -1
		for j := 0; j < b; j++ {
			if !matches(i, j) && (hardText[i] < 0 || scores[i*b+j] > scores[i*b+hardText[i]]) {
				hardText[i] = j
			}
			if !matches(j, i) && (hardImage[i] < 0 || scores[j*b+i] > scores[hardImage[i]*b+i]) {
				hardImage[i] = j
			}
		}
	}
	return hardText, hardImage, nil
}

// ITMScoreMatrix scores every image of in with every text of in: the ITM
// log-odds of a match, logit(match) − logit(no match), as float64 [B·B]
// (image-major). No gradient, evaluation mode; one B-row encoder pass per
// image, its temporaries freed after each.
func (m *Model) ITMScoreMatrix(s *torch.Scope, in *Inputs) ([]float64, error) {
	b := in.B
	out := make([]float64, 0, b*b)
	var err error
	torch.NoGrad(func() {
		f := &fwd{s: s}
		img, _, imgPad := m.imageTokens(f, in) // [B,hw,d], [B,hw]
		text := m.Text.text(f, in.TokenIDs)    // [B,L,d]
		if err = s.Err(); err != nil {
			return
		}
		same := make([]int64, b)
		for i := 0; i < b && err == nil; i++ {
			err = func() error {
				si := torch.NewScope()
				defer si.Close()
				for k := range same {
					same[k] = int64(i)
				}
				idx := torch.FromInt64(si, same, []int64{int64(b)}, m.Device)                                                          // [B] all i
				v, err := m.itmLogOdds(&fwd{s: si}, text, in.TokenPad, img.IndexSelect(0, idx), imgPad.IndexSelect(0, idx)).Float32s() // [B]
				if err != nil {
					return fmt.Errorf("image %d: %w", i, err)
				}
				for _, val := range v {
					out = append(out, float64(val))
				}
				return nil
			}()
		}
	})
	if err == nil {
		err = s.Err()
	}
	if err != nil {
		return nil, fmt.Errorf("model: ITM score matrix: %w", err)
	}
	return out, nil
}

// itmLogOdds is the ITM log-odds of a match, logit(match) − logit(no match), of the rows of text
// [R,L,d] (textPad [R,L]) read with the image tokens img [R,hw,d] (imgPad [R,hw]): [R].
func (m *Model) itmLogOdds(f *fwd, text, textPad, img, imgPad *torch.Tensor) *torch.Tensor {
	x := m.encode(f, text, textPad, img, imgPad) // [R,L+hw,d]
	lg := m.ITM.forward(x.Select(1, 0))          // [R,2]
	return torch.Sub(lg.Select(1, 1), lg.Select(1, 0))
}

// RetrievalForward mines hard negatives in the batch in (B matching pairs,
// the fields PairsToTensors fills; imageIDs may be nil) and runs the ITM
// training pass over the positives and the mined negatives. train and gen
// as in Forward; the backbone runs once over the B images and the rows
// index into its tokens.
func (m *Model) RetrievalForward(s *torch.Scope, in *Inputs, imageIDs []uint64, train bool, gen *torch.Generator) (*RetrievalOutput, error) {
	scores, err := m.ITMScoreMatrix(s, in)
	if err != nil {
		return nil, err
	}
	hardText, hardImage, err := MineHardNegatives(scores, in.B, imageIDs)
	if err != nil {
		return nil, err
	}
	out := &RetrievalOutput{HardText: hardText, HardImage: hardImage}
	add := func(img, txt int, label int64) {
		out.Images, out.Texts, out.Labels = append(out.Images, img), append(out.Texts, txt), append(out.Labels, label)
	}
	for i := 0; i < in.B; i++ {
		add(i, i, 1)
	}
	for i, j := range hardText {
		if j >= 0 {
			add(i, j, 0)
		}
	}
	for j, i := range hardImage {
		if i >= 0 {
			add(i, j, 0)
		}
	}
	r := int64(len(out.Labels))
	toIdx := func(v []int) *torch.Tensor {
		w := make([]int64, len(v))
		for k, x := range v {
			w[k] = int64(x)
		}
		return torch.FromInt64(s, w, []int64{r}, m.Device) // [R]
	}
	f := &fwd{s: s, train: train, dropout: m.Config.Dropout, gen: gen}
	img, _, imgPad := m.imageTokens(f, in) // [B,hw,d], [B,hw]
	text := m.Text.text(f, in.TokenIDs)    // [B,L,d]
	ii, ti := toIdx(out.Images), toIdx(out.Texts)
	x := m.encode(f, text.IndexSelect(0, ti), in.TokenPad.IndexSelect(0, ti),
		img.IndexSelect(0, ii), imgPad.IndexSelect(0, ii)) // [R,L+hw,d]
	out.Logits = m.ITM.forward(x.Select(1, 0)) // [R,2]
	labels := torch.FromInt64(s, out.Labels, []int64{r}, m.Device)
	out.Losses = taskLosses("retrieval", torch.CrossEntropy(out.Logits, labels, nil, data.IgnoreIndex, torch.ReduceMean))
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("model: retrieval forward: %w", err)
	}
	return out, nil
}

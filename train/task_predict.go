package train

import (
	"fmt"

	"github.com/e2evlp/vlp/data"
	"github.com/e2evlp/vlp/model"
	"github.com/e2evlp/vlp/torch"
)

// TaskPredictions are a fine-tuned model's outputs on held-out records (the model in evaluation
// mode: no dropout, BatchNorm's running statistics), for package eval to score:
//
//	vqa        Answers[k]: question k's answer (the argmax of the answer vocabulary)
//	nlvr2      True[k]: statement k judged true of its pair
//	caption    Captions[i]: a caption of image i of Images (beam search), its words
//	retrieval  Scores[i][j]: image i of Images with text j, the ITM log-odds; TextImage[j]: text j's image
type TaskPredictions struct {
	Answers  []string
	True     []bool
	Captions []string
	Scores   [][]float64 // [N][M]
	// TextImage maps retrieval's texts to their images: the texts are every sentence of every
	// image of Images, image by image (text j is a sentence of Images[TextImage[j]]), as
	// eval.RankRetrievalTexts reads them.
	TextImage []int // [M]
	// Images are the distinct images of caption and retrieval records, in record order, with
	// their sentences; for retrieval, the images ranked (RetrievalImages bounds them).
	Images []KarpathyImage
}

// KarpathyImage is one image of Karpathy records with its sentences.
type KarpathyImage struct {
	ImgID     int64
	Image     string
	Sentences []string
}

// imagesOf groups caption records by image, in record order.
func imagesOf(r *TaskRecords) []KarpathyImage {
	var out []KarpathyImage
	at := map[int64]int{}
	for _, c := range r.Captions {
		i, ok := at[c.ImgID]
		if !ok {
			i = len(out)
			at[c.ImgID] = i
			out = append(out, KarpathyImage{ImgID: c.ImgID, Image: c.Image})
		}
		out[i].Sentences = append(out[i].Sentences, c.Sentence)
	}
	return out
}

// predictBatch is the rows of one evaluation pass.
const predictBatch = 64

// PredictOption adjusts Predict; each option's doc states its default.
type PredictOption func(*predictOptions)

type predictOptions struct {
	retrievalImages int                   // 0: all
	progress        func(done, total int) // nil: none
	rows            int                   // retrieval: pairs of one encoder pass, images of one backbone pass; predictBatch (tests: fewer)
}

// Predict runs l's model (and head) over held, which must be of l's task (VQA records with l's
// answer vocabulary). beams sizes captioning's beam search.
func (l *Learner) Predict(held *TaskRecords, beams int, opts ...PredictOption) (*TaskPredictions, error) {
	t := l.cfg.Task
	if t == nil || held.Task != t.Task {
		return nil, fmt.Errorf("train: predict: records of %s for a learner of %v", held.Task, t)
	}
	o := predictOptions{rows: predictBatch}
	for _, opt := range opts {
		opt(&o)
	}
	if o.retrievalImages < 0 {
		return nil, fmt.Errorf("train: predict: %d retrieval images, want >= 0 (0: all)", o.retrievalImages)
	}
	if o.rows < 1 {
		return nil, fmt.Errorf("train: predict: %d rows a pass, want >= 1", o.rows)
	}
	ex := &TaskExamples{Records: held, Tokenizer: t.Examples.Tokenizer, Data: t.Examples.Data, Seed: l.cfg.Seed, PerUnit: 1}
	out := &TaskPredictions{}
	if held.Task == TaskCaption || held.Task == TaskRetrieval {
		out.Images = imagesOf(held)
	}
	var err error
	switch held.Task {
	case TaskVQA, TaskNLVR2:
		for lo := 0; lo < held.Len() && err == nil; lo += predictBatch {
			pos := make([]int, 0, predictBatch)
			for k := lo; k < min(lo+predictBatch, held.Len()); k++ {
				pos = append(pos, k)
			}
			err = l.predictRows(ex, pos, out)
		}
	case TaskCaption:
		for lo := 0; lo < len(out.Images) && err == nil; lo += predictBatch {
			err = l.predictCaptions(ex, out, lo, min(lo+predictBatch, len(out.Images)), beams)
		}
	case TaskRetrieval:
		err = l.predictScores(ex, out, o)
	}
	if err != nil {
		return nil, fmt.Errorf("train: predict %s: %w", held.Task, err)
	}
	return out, nil
}

// predictRows appends the answers (VQA) or judgements (NLVR2) of examples pos.
func (l *Learner) predictRows(ex *TaskExamples, pos []int, out *TaskPredictions) error {
	b, err := ex.build(pos, 0)
	if err != nil {
		return err
	}
	var ferr error
	l.do(func() {
		s := torch.NewScope()
		defer s.Close()
		dev := l.cfg.Device
		if b.nlvr2 != nil {
			in, err := model.NLVR2ToTensors(s, b.nlvr2, dev)
			if err != nil {
				ferr = err
				return
			}
			logits, _, err := l.head.(*model.NLVR2Head).Forward(s, l.e.m, in, false, nil) // [B,2]
			if err != nil {
				ferr = err
				return
			}
			pred, err := logits.Detach().Argmax(1, false).Int64s() // [B]
			if err != nil {
				ferr = err
				return
			}
			for _, p := range pred {
				out.True = append(out.True, p == 1)
			}
			return
		}
		in, err := model.PairsToTensors(s, b.pairs, dev)
		if err != nil {
			ferr = err
			return
		}
		logits, _, err := l.head.(*model.VQAHead).Forward(s, l.e.m, in, nil, false, nil) // [B,A]
		if err != nil {
			ferr = err
			return
		}
		pred, err := model.VQAPredict(logits)
		if err != nil {
			ferr = err
			return
		}
		for _, c := range pred {
			out.Answers = append(out.Answers, ex.Records.Answers.Answers[c])
		}
	})
	return ferr
}

// predictCaptions appends beam-search captions of images lo…hi-1.
func (l *Learner) predictCaptions(ex *TaskExamples, out *TaskPredictions, lo, hi, beams int) error {
	texts, paths := make([]string, 0, hi-lo), make([]string, 0, hi-lo)
	for _, im := range out.Images[lo:hi] {
		texts, paths = append(texts, ""), append(paths, im.Image)
	}
	pb, err := ex.pairBatch(texts, paths) // [CLS] [SEP] and the images
	if err != nil {
		return err
	}
	v := ex.Tokenizer.Vocab()
	return l.onPairs(pb, func(s *torch.Scope, in *model.Inputs) error {
		caps, err := l.e.m.BeamCaptions(s, in, v.CLSID, v.SEPID, l.e.m.Config.MaxCaptionLen, max(beams, 1))
		if err != nil {
			return err
		}
		for _, c := range caps {
			out.Captions = append(out.Captions, detokenize(v, c.IDs))
		}
		return nil
	})
}

// onPairs runs f on the learner's thread with pb's rows as tensors on the learner's device, in a
// scope that closes when f returns.
func (l *Learner) onPairs(pb *model.PairBatch, f func(s *torch.Scope, in *model.Inputs) error) error {
	var ferr error
	l.do(func() {
		s := torch.NewScope()
		defer s.Close()
		in, err := model.PairsToTensors(s, pb, l.cfg.Device)
		if err != nil {
			ferr = err
			return
		}
		ferr = f(s, in)
	})
	return ferr
}

// detokenize joins WordPiece tokens into words.
func detokenize(v *data.Vocab, ids []int64) string {
	var s []byte
	for _, id := range ids {
		tok := v.Token(id)
		if len(tok) > 2 && tok[:2] == "##" {
			s = append(s, tok[2:]...)
			continue
		}
		if len(s) > 0 {
			s = append(s, ' ')
		}
		s = append(s, tok...)
	}
	return string(s)
}

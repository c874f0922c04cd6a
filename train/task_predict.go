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
//	retrieval  Scores[i][j]: image i with text j, the ITM log-odds (Images, Texts below)
type TaskPredictions struct {
	Answers  []string
	True     []bool
	Captions []string
	Scores   [][]float64
	// Images are the distinct images of caption and retrieval records, in record order, with
	// their sentences; retrieval's texts are each image's first sentence.
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

// Predict runs l's model (and head) over held, which must be of l's task (VQA records with l's
// answer vocabulary). beams sizes captioning's beam search.
func (l *Learner) Predict(held *TaskRecords, beams int) (*TaskPredictions, error) {
	t := l.cfg.Task
	if t == nil || held.Task != t.Task {
		return nil, fmt.Errorf("train: predict: records of %s for a learner of %v", held.Task, t)
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
		err = l.predictScores(ex, out)
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
	var ferr error
	l.do(func() {
		s := torch.NewScope()
		defer s.Close()
		in, err := model.PairsToTensors(s, pb, l.cfg.Device)
		if err != nil {
			ferr = err
			return
		}
		caps, err := l.e.m.BeamCaptions(s, in, v.CLSID, v.SEPID, l.e.m.Config.MaxCaptionLen, max(beams, 1))
		if err != nil {
			ferr = err
			return
		}
		for _, c := range caps {
			out.Captions = append(out.Captions, detokenize(v, c.IDs))
		}
	})
	return ferr
}

// predictScores scores every image with every image's first sentence, at most predictBatch of
// each (the ITM score matrix of one batch).
func (l *Learner) predictScores(ex *TaskExamples, out *TaskPredictions) error {
	out.Images = out.Images[:min(len(out.Images), predictBatch)]
	texts, paths := make([]string, 0, len(out.Images)), make([]string, 0, len(out.Images))
	for _, im := range out.Images {
		texts, paths = append(texts, im.Sentences[0]), append(paths, im.Image)
	}
	pb, err := ex.pairBatch(texts, paths)
	if err != nil {
		return err
	}
	var ferr error
	l.do(func() {
		s := torch.NewScope()
		defer s.Close()
		in, err := model.PairsToTensors(s, pb, l.cfg.Device)
		if err != nil {
			ferr = err
			return
		}
		flat, err := l.e.m.ITMScoreMatrix(s, in) // [B·B] image-major
		if err != nil {
			ferr = err
			return
		}
		n := len(out.Images)
		for i := 0; i < n; i++ {
			out.Scores = append(out.Scores, flat[i*n:(i+1)*n])
		}
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

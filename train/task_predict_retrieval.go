package train

import (
	"fmt"

	"github.com/e2evlp/vlp/model"
	"github.com/e2evlp/vlp/torch"
)

// Retrieval is evaluated as UNITER and E2E-VLP evaluate Flickr30K 1K and COCO 5K: every test
// image against every sentence of every test image (five each), ranked by the ITM log-odds
// (eval.RankRetrievalTexts). That is N×M pairs, 125 million for COCO's 5K images, so the
// scores are computed in tiles: the images in blocks of predictBatch, each block's backbone
// features computed once (model.EncodeITMImages) and kept while the block's pairs, image-major,
// go through the single-stream encoder predictBatch rows a pass (model.ITMPairScores). The
// device holds one block and one pass whatever N and M; the encoder runs once per pair, the
// backbone once per image. The host holds the N×M scores (1 GB of float64 for COCO 5K).

// RetrievalImages bounds retrieval's ranking to the first n images of the held-out records, in
// record order, and their sentences. Default 0: every image.
func RetrievalImages(n int) PredictOption {
	return func(o *predictOptions) { o.retrievalImages = n }
}

// RetrievalProgress has retrieval call fn after each pass of the encoder with the pairs scored
// so far and their total. fn runs on the learner's thread between passes: it must return
// quickly and must not call the learner. Default: none.
func RetrievalProgress(fn func(done, total int)) PredictOption {
	return func(o *predictOptions) { o.progress = fn }
}

// retrievalTiles is the state of one ranking: every text tokenised once on the host (M·L ids, a
// few MB for COCO's 25K sentences), the scores filled in and the progress made.
type retrievalTiles struct {
	out      *TaskPredictions
	ids      []int64 // [M,L] [CLS] text [SEP] and padding
	mask     []bool  // [M,L] true on padding
	l        int
	rows     int
	progress func(done, total int)
	done     int
	total    int
}

// predictScores scores every image of out.Images (the first o.retrievalImages when set) with
// every sentence of every one of them: out.Scores [N][M] and out.TextImage [M].
func (l *Learner) predictScores(ex *TaskExamples, out *TaskPredictions, o predictOptions) error {
	if o.retrievalImages > 0 && o.retrievalImages < len(out.Images) {
		out.Images = out.Images[:o.retrievalImages]
	}
	t := &retrievalTiles{out: out, l: ex.Data.MaxTextLen, rows: o.rows, progress: o.progress}
	for i, im := range out.Images {
		for _, sent := range im.Sentences {
			j := len(out.TextImage)
			t.ids, t.mask = append(t.ids, make([]int64, t.l)...), append(t.mask, make([]bool, t.l)...)
			if err := ex.tokens(sent, t.ids[j*t.l:(j+1)*t.l], t.mask[j*t.l:(j+1)*t.l]); err != nil {
				return fmt.Errorf("image %d (%s): %w", im.ImgID, im.Image, err)
			}
			out.TextImage = append(out.TextImage, i)
		}
	}
	n, m := len(out.Images), len(out.TextImage)
	out.Scores = make([][]float64, n)
	for i := range out.Scores {
		out.Scores[i] = make([]float64, m)
	}
	t.total = n * m
	for lo := 0; lo < n; lo += t.rows {
		hi := min(lo+t.rows, n)
		texts, paths := make([]string, 0, hi-lo), make([]string, 0, hi-lo)
		for _, im := range out.Images[lo:hi] {
			texts, paths = append(texts, ""), append(paths, im.Image) // the backbone reads no text
		}
		pb, err := ex.pairBatch(texts, paths)
		if err != nil {
			return fmt.Errorf("images %d…%d: %w", lo, hi-1, err)
		}
		ferr := l.onPairs(pb, func(s *torch.Scope, in *model.Inputs) error {
			img, err := l.e.m.EncodeITMImages(s, in) // [hi-lo,hw,d], kept for the block's passes
			if err != nil {
				return err
			}
			return l.scoreBlock(t, img, lo, hi)
		})
		if ferr != nil {
			return fmt.Errorf("images %d…%d: %w", lo, hi-1, ferr)
		}
	}
	return nil
}

// scoreBlock scores images lo…hi-1 (img, their features) with every text, t.rows pairs a pass
// in image-major order; a pass may end one image's row and start the next. It runs on the
// learner's thread.
func (l *Learner) scoreBlock(t *retrievalTiles, img *model.ITMImages, lo, hi int) error {
	m, L := len(t.out.TextImage), t.l
	pairs := (hi - lo) * m
	images := make([]int, 0, t.rows)                                   // [R] block image of each row
	ids, mask := make([]int64, 0, t.rows*L), make([]bool, 0, t.rows*L) // [R,L]
	for p0 := 0; p0 < pairs; p0 += t.rows {
		p1 := min(p0+t.rows, pairs)
		images, ids, mask = images[:0], ids[:0], mask[:0]
		for p := p0; p < p1; p++ {
			i, j := p/m, p%m // block image, text
			images = append(images, i)
			ids, mask = append(ids, t.ids[j*L:(j+1)*L]...), append(mask, t.mask[j*L:(j+1)*L]...)
		}
		s := torch.NewScope() // younger than img's: the pass's temporaries join it and go with it
		v, err := l.e.m.ITMPairScores(s, img, images, ids, mask)
		s.Close()
		if err != nil {
			return err
		}
		for k, score := range v {
			t.out.Scores[lo+(p0+k)/m][(p0+k)%m] = score
		}
		t.done += p1 - p0
		if t.progress != nil {
			t.progress(t.done, t.total)
		}
	}
	return nil
}

package eval

import (
	"fmt"
	"math"
)

// RetrievalKs are the cut-offs of recall at K.
var RetrievalKs = [3]int{1, 5, 10}

// Retrieval is recall at 1, 5 and 10 in both directions over N images and
// their texts.
type Retrieval struct {
	N           int        `json:"n"`             // images
	Texts       int        `json:"texts"`         // texts, each one image's (N when each image has one)
	ImageToText [3]float64 `json:"image_to_text"` // R@1, R@5, R@10 over the images: one of the image's texts among the top K texts
	TextToImage [3]float64 `json:"text_to_image"` // over the texts: the text's image among the top K images
}

// RankRetrieval ranks an N×N score matrix, scores[i][j] the ITM score of
// image i with text j, text i being image i's: RankRetrievalTexts with
// text j → image j. Filling the matrix costs N² forward passes of the
// whole model: the single-stream encoder must see every image with every
// text.
func RankRetrieval(scores [][]float64) (Retrieval, error) {
	n := len(scores)
	textImage := make([]int, n)
	for i, row := range scores {
		if len(row) != n {
			return Retrieval{N: n, Texts: n}, fmt.Errorf("eval: retrieval: row %d has %d scores, want %d", i, len(row), n)
		}
		textImage[i] = i
	}
	return RankRetrievalTexts(scores, textImage)
}

// RankRetrievalTexts ranks an N×M score matrix, scores[i][j] the ITM score
// of image i with text j, where text j is a sentence of image
// textImage[j] and an image may have several (Flickr30K's and COCO's
// five), with the protocol of UNITER's and E2E-VLP's 1K / 5K test sets:
//
//   - image→text, per image: a hit at K when any of its texts is among the
//     top K of the M texts. Its rank is the number of other images' texts
//     that score at least as high as its best text; its own texts never
//     count against each other.
//   - text→image, per text: a hit at K when its image is among the top K
//     of the N images. Its rank is the number of other images that score
//     at least as high with it.
//
// A hit is a rank below K; R@K is the share of hits, over the N images
// and over the M texts. Ties count against the true pair, so the ranks do
// not depend on the order of the images or texts and a model that scores
// everything alike gets R@1 = 0, not 1. A NaN score ranks as −∞, below
// every number (NaNs tie with each other): a model that diverged scores
// zero rather than the perfect recall a plain comparison with NaN would
// give it. An image with no text, a text whose image is out of range and a
// row of another length than textImage are errors that name it.
func RankRetrievalTexts(scores [][]float64, textImage []int) (Retrieval, error) {
	n, m := len(scores), len(textImage)
	r := Retrieval{N: n, Texts: m}
	for i, row := range scores {
		if len(row) != m {
			return r, fmt.Errorf("eval: retrieval: row %d (image %d) has %d scores, want one per text, %d", i, i, len(row), m)
		}
	}
	texts := make([]int, n) // texts of each image
	for j, i := range textImage {
		if i < 0 || i >= n {
			return r, fmt.Errorf("eval: retrieval: text %d belongs to image %d, outside the %d images", j, i, n)
		}
		texts[i]++
	}
	for i, k := range texts {
		if k == 0 {
			return r, fmt.Errorf("eval: retrieval: image %d has no text", i)
		}
	}
	if n == 0 {
		return r, nil
	}
	// rankKey orders a score for ranking: NaN below every number.
	rankKey := func(v float64) float64 {
		if math.IsNaN(v) {
			return math.Inf(-1)
		}
		return v
	}
	hits := func(rank int, recall *[3]float64) {
		for k, K := range RetrievalKs {
			if rank < K {
				recall[k]++
			}
		}
	}
	for i, row := range scores {
		best := math.Inf(-1) // the image's best score with one of its texts
		for j, v := range row {
			if textImage[j] == i {
				best = max(best, rankKey(v))
			}
		}
		rank := 0
		for j, v := range row {
			if textImage[j] != i && rankKey(v) >= best {
				rank++
			}
		}
		hits(rank, &r.ImageToText)
	}
	for j, g := range textImage {
		own, rank := rankKey(scores[g][j]), 0
		for i := range n {
			if i != g && rankKey(scores[i][j]) >= own {
				rank++
			}
		}
		hits(rank, &r.TextToImage)
	}
	for k := range RetrievalKs {
		r.ImageToText[k] /= float64(n)
		r.TextToImage[k] /= float64(m)
	}
	return r, nil
}

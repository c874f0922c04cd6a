package eval

import "fmt"

// RetrievalKs are the cut-offs of recall at K.
var RetrievalKs = [3]int{1, 5, 10}

// Retrieval is recall at 1, 5 and 10 in both directions over N images and
// their N texts.
type Retrieval struct {
	N           int        `json:"n"`
	ImageToText [3]float64 `json:"image_to_text"` // R@1, R@5, R@10: the image's own text among the top K texts
	TextToImage [3]float64 `json:"text_to_image"` // the text's own image among the top K images
}

// RankRetrieval ranks an N×N score matrix, scores[i][j] the ITM score of
// image i with text j, text i being image i's. A true pair's rank is the
// number of other candidates that score at least as high (ties count
// against it, so a model that scores everything alike gets R@1 = 0, not
// 1); it is found in the top K when its rank is below K. Filling the
// matrix costs N² forward passes of the whole model: the single-stream
// encoder must see every image with every text.
func RankRetrieval(scores [][]float64) (Retrieval, error) {
	n := len(scores)
	r := Retrieval{N: n}
	for i, row := range scores {
		if len(row) != n {
			return r, fmt.Errorf("eval: retrieval: row %d has %d scores, want %d", i, len(row), n)
		}
	}
	if n == 0 {
		return r, nil
	}
	for i := range n {
		i2t, t2i := 0, 0
		for j := range n {
			if j == i {
				continue
			}
			if scores[i][j] >= scores[i][i] {
				i2t++
			}
			if scores[j][i] >= scores[i][i] {
				t2i++
			}
		}
		for k, K := range RetrievalKs {
			if i2t < K {
				r.ImageToText[k]++
			}
			if t2i < K {
				r.TextToImage[k]++
			}
		}
	}
	for k := range RetrievalKs {
		r.ImageToText[k] /= float64(n)
		r.TextToImage[k] /= float64(n)
	}
	return r, nil
}

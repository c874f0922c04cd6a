package eval

import (
	"math"
	"strings"
	"testing"
)

func TestRankRetrieval(t *testing.T) {
	// Image 0 finds its text first; image 1 has one text above its own;
	// image 2 ties with both others (ties count against it). Every text
	// finds its own image first.
	r, err := RankRetrieval([][]float64{
		{0.9, 0.1, 0.2},
		{0.8, 0.5, 0.1},
		{0.3, 0.3, 0.3},
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := [3]float64{1.0 / 3, 1, 1}; r.ImageToText != want {
		t.Errorf("image→text = %v, want %v", r.ImageToText, want)
	}
	if want := [3]float64{1, 1, 1}; r.TextToImage != want {
		t.Errorf("text→image = %v, want %v", r.TextToImage, want)
	}

	// Seven images: image 0's own text is sixth (five above it), outside
	// the top 5, inside the top 10; text 6 is beaten by image 0 alone.
	s := make([][]float64, 7)
	for i := range s {
		s[i] = make([]float64, 7)
		s[i][i] = 1
	}
	s[0] = []float64{0.5, 0.9, 0.8, 0.7, 0.6, 0.55, 1.5}
	r, _ = RankRetrieval(s)
	if want := [3]float64{6.0 / 7, 6.0 / 7, 1}; r.ImageToText != want {
		t.Errorf("image→text = %v, want %v", r.ImageToText, want)
	}
	if want := [3]float64{6.0 / 7, 1, 1}; r.TextToImage != want {
		t.Errorf("text→image = %v, want %v", r.TextToImage, want)
	}

	if _, err := RankRetrieval([][]float64{{1, 2}, {3}}); err == nil {
		t.Error("a ragged matrix: no error")
	}
}

// TestRankRetrievalTexts: images with several texts, by hand. Image 0 has
// texts 0–1, image 1 texts 2–10, image 2 text 11.
func TestRankRetrievalTexts(t *testing.T) {
	textImage := []int{0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2}
	scores := [][]float64{
		// Image 0's best text scores 0.6; six other texts score at least
		// that (1, 0.7, 0.6 tied, 0.9, 0.65, 0.61): rank 6, a hit at 10 only.
		{0.4, 0.6, 0.7, 1, 0.6, 0.9, 0.65, 0.61, 0.1, 0.2, 0.3, 0.5},
		// Image 1's nine texts tie at the top: they never count against
		// each other, so rank 0 (it would be 8 if they did).
		{0.5, 0.5, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0.2},
		// Image 2's text scores below all eleven others: rank 11, a miss.
		{0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0},
	}
	// Text→image (columns): text 0 loses to image 1 (0.5 > 0.4), text 3
	// ties with image 0 (1 = 1, counted against it), text 11 loses to both
	// others; the other nine texts rank their image first. With three
	// images every text is in the top 5.
	check := func(name string, scores [][]float64, textImage []int) {
		t.Helper()
		r, err := RankRetrievalTexts(scores, textImage)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if r.N != 3 || r.Texts != 12 {
			t.Errorf("%s: %d images, %d texts, want 3 and 12", name, r.N, r.Texts)
		}
		if want := [3]float64{1.0 / 3, 1.0 / 3, 2.0 / 3}; r.ImageToText != want {
			t.Errorf("%s: image→text = %v, want %v", name, r.ImageToText, want)
		}
		if want := [3]float64{9.0 / 12, 1, 1}; r.TextToImage != want {
			t.Errorf("%s: text→image = %v, want %v", name, r.TextToImage, want)
		}
	}
	check("in order", scores, textImage)

	// The same texts in another order (and the images too): ties are
	// counted, not broken by position, so nothing changes.
	perm := []int{11, 3, 0, 7, 2, 10, 1, 5, 9, 4, 8, 6} // new text k is old text perm[k]
	imgPerm := []int{2, 0, 1}                           // new image i is old image imgPerm[i]
	oldToNew := []int{1, 2, 0}
	ps, pm := make([][]float64, 3), make([]int, len(perm))
	for i, old := range imgPerm {
		ps[i] = make([]float64, len(perm))
		for k, j := range perm {
			ps[i][k] = scores[old][j]
		}
	}
	for k, j := range perm {
		pm[k] = oldToNew[textImage[j]]
	}
	check("permuted", ps, pm)
}

// TestRankRetrievalNaN: a NaN ranks below every number, so a model whose
// scores are NaN gets no hit at R@1 instead of a perfect one.
func TestRankRetrievalNaN(t *testing.T) {
	nan := math.NaN()
	for _, c := range []struct {
		name   string
		scores [][]float64
		want   [3]float64 // both ways
	}{
		{"NaN on the diagonal", [][]float64{{nan, 0}, {0, nan}}, [3]float64{0, 1, 1}},
		{"all NaN (ties)", [][]float64{{nan, nan}, {nan, nan}}, [3]float64{0, 1, 1}},
		{"NaN off the diagonal", [][]float64{{0, nan}, {nan, 0}}, [3]float64{1, 1, 1}},
	} {
		r, err := RankRetrieval(c.scores)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if r.ImageToText != c.want || r.TextToImage != c.want {
			t.Errorf("%s: image→text %v, text→image %v, want %v both", c.name, r.ImageToText, r.TextToImage, c.want)
		}
	}
}

// TestRankRetrievalTextsRefuses: each malformed input is named.
func TestRankRetrievalTextsRefuses(t *testing.T) {
	two := [][]float64{{1, 2, 3}, {4, 5, 6}}
	for _, c := range []struct {
		name      string
		scores    [][]float64
		textImage []int
		want      string
	}{
		{"an image without text", two, []int{0, 0, 0}, "image 1 has no text"},
		{"a text of image 2 of 2", two, []int{0, 1, 2}, "text 2 belongs to image 2"},
		{"a negative image", two, []int{-1, 0, 1}, "text 0 belongs to image -1"},
		{"a short row", [][]float64{{1, 2, 3}, {4, 5}}, []int{0, 1, 1}, "row 1 (image 1) has 2 scores"},
		{"texts but no image", nil, []int{0}, "text 0 belongs to image 0"},
	} {
		_, err := RankRetrievalTexts(c.scores, c.textImage)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
	if r, err := RankRetrievalTexts(nil, nil); err != nil || r.N != 0 || r.Texts != 0 {
		t.Errorf("nothing to rank: %+v, %v", r, err)
	}
}

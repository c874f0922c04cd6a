package eval

import "testing"

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

package train

import (
	"math"
	"testing"

	"github.com/e2evlp/vlp/eval"
	"github.com/e2evlp/vlp/model"
	"github.com/e2evlp/vlp/torch"
)

// TestPredictRetrievalTiles: a retrieval learner ranks 24 images against all their sentences
// (1 to 5 each, 70 in all: more than one pass of predictBatch texts), in tiles of predictBatch
// pairs and of 7 (blocks of 7 images, passes that end one image's row and start the next). Every
// score equals the ITM log-odds of the same pair computed without tiles: each image's pairs as
// one batch through Model.Understand, which runs the backbone per pair. RetrievalImages keeps the
// first images and only their sentences; progress counts every pair once.
func TestPredictRetrievalTiles(t *testing.T) {
	ts := newTaskSetup(t, TaskRetrieval, 8, 4, 1, nil)
	l, err := New(ts.cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Init(1); err != nil {
		t.Fatal(err)
	}
	path, _ := taskRecordsFiles(t, TaskRetrieval, 3, 40, t.TempDir())
	all, err := LoadTaskRecords(TaskRetrieval, path, 1)
	if err != nil {
		t.Fatal(err)
	}
	// Image i (in record order) keeps its first 1 + i%5 sentences.
	const n, m = 24, 70
	held := &TaskRecords{Task: TaskRetrieval}
	index, taken := map[int64]int{}, map[int64]int{}
	for _, c := range all.Captions {
		i, ok := index[c.ImgID]
		if !ok {
			if len(index) == n {
				continue
			}
			i = len(index)
			index[c.ImgID] = i
		}
		if taken[c.ImgID] < 1+i%5 {
			held.Captions = append(held.Captions, c)
			taken[c.ImgID]++
		}
	}
	if len(index) != n || len(held.Captions) != m {
		t.Fatalf("held-out set: %d images, %d sentences, want %d and %d", len(index), len(held.Captions), n, m)
	}
	want := understandScores(t, l, held)
	// The tiles' passes hold other rows than Understand's batches, so their sums may round
	// apart, by about 1e-7 on the CPU; pairs given another image differ by up to the spread
	// that understandScores checks is at least 1e-3.
	const tolerance = 1e-5

	check := func(name string, p *TaskPredictions, images int) {
		t.Helper()
		texts := 0
		for i := range images {
			texts += 1 + i%5
		}
		if len(p.Images) != images || len(p.Scores) != images || len(p.TextImage) != texts {
			t.Fatalf("%s: %d images, %d score rows, %d texts, want %d, %d, %d", name, len(p.Images), len(p.Scores), len(p.TextImage), images, images, texts)
		}
		j := 0
		for i := range images {
			for range 1 + i%5 {
				if p.TextImage[j] != i {
					t.Fatalf("%s: text %d of image %d, want %d", name, j, p.TextImage[j], i)
				}
				j++
			}
		}
		var worst float64
		for i, row := range p.Scores {
			if len(row) != texts {
				t.Fatalf("%s: row %d has %d scores, want %d", name, i, len(row), texts)
			}
			for j, v := range row {
				worst = max(worst, math.Abs(v-want[i][j]))
			}
		}
		if worst > tolerance {
			t.Errorf("%s: scores differ from Understand's by up to %.2g", name, worst)
		}
		if _, err := eval.RankRetrievalTexts(p.Scores, p.TextImage); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		t.Logf("%s: %d×%d scores, within %.2g of Understand's", name, images, texts, worst)
	}

	var calls, last int
	p, err := l.Predict(held, 1, RetrievalProgress(func(done, total int) {
		if total != n*m || done <= last || done > total {
			t.Errorf("progress %d of %d after %d", done, total, last)
		}
		calls, last = calls+1, done
	}))
	if err != nil {
		t.Fatal(err)
	}
	check("tiles of 64", p, n)
	if passes := (n*m + predictBatch - 1) / predictBatch; calls != passes || last != n*m {
		t.Errorf("progress: %d calls ending at %d, want %d ending at %d", calls, last, passes, n*m)
	}
	if p, err = l.Predict(held, 1, withPredictRows(7)); err != nil {
		t.Fatal(err)
	}
	check("tiles of 7", p, n)
	if p, err = l.Predict(held, 1, withPredictRows(7), RetrievalImages(10)); err != nil {
		t.Fatal(err)
	}
	check("the first 10 images", p, 10)
	if _, err := l.Predict(held, 1, RetrievalImages(-1)); err == nil {
		t.Error("RetrievalImages(-1) accepted")
	}
}

// withPredictRows sets the rows of one retrieval pass: a few cross every tile boundary on a
// small set.
func withPredictRows(n int) PredictOption {
	return func(o *predictOptions) { o.rows = n }
}

// understandScores is the ITM log-odds of every image of held with every sentence, image by image:
// one batch of the image with each sentence through Model.Understand.
func understandScores(t *testing.T, l *Learner, held *TaskRecords) [][]float64 {
	t.Helper()
	ex := &TaskExamples{Records: held, Tokenizer: l.cfg.Task.Examples.Tokenizer, Data: l.cfg.Data, Seed: 1, PerUnit: 1}
	images := imagesOf(held)
	var texts []string
	for _, im := range images {
		texts = append(texts, im.Sentences...)
	}
	out := make([][]float64, len(images))
	for i, im := range images {
		paths := make([]string, len(texts))
		for j := range paths {
			paths[j] = im.Image
		}
		pb, err := ex.pairBatch(texts, paths)
		if err != nil {
			t.Fatal(err)
		}
		err = l.onPairs(pb, func(s *torch.Scope, in *model.Inputs) error {
			lg, err := l.e.m.Understand(s, in) // [M,2]
			if err != nil {
				return err
			}
			v, err := lg.Float32s()
			if err != nil {
				return err
			}
			for j := range texts {
				out[i] = append(out[i], float64(v[2*j+1]-v[2*j]))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// How far apart two images score with the same text: a tiling that paired a text with the
	// wrong image must show.
	var spread float64
	for j := range texts {
		lo, hi := out[0][j], out[0][j]
		for i := range out {
			lo, hi = min(lo, out[i][j]), max(hi, out[i][j])
		}
		spread = max(spread, hi-lo)
	}
	if spread < 1e-3 {
		t.Fatalf("the model scores every image within %.2g of the others with the same text: the comparison would prove nothing", spread)
	}
	t.Logf("images score up to %.2g apart with the same text", spread)
	return out
}

package model

import (
	"math"
	"slices"
	"testing"

	"github.com/e2evlp/vlp/torch"
)

const (
	beamStart, beamEnd = 2, 3 // token ids the tests start and end captions with
)

// beamSetup is an untrained model and a batch of three images; untrained
// logits are as good as any for checking the search itself. endBias is
// added to the caption head's bias of the end token: at 0 an untrained
// model almost never ends a caption, at 4 it often does.
func beamSetup(t *testing.T, endBias float64) (*Model, *torch.Scope, *Inputs) {
	t.Helper()
	needTorch(t)
	m, err := New(parityConfig(), 1, torch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	s := torch.NewScope()
	t.Cleanup(s.Close)
	in, err := BatchToTensors(s, synthBatch(t, 8, 3, 64, 2), torch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	bias, err := m.Caption.bias.Float32s() // [V]
	if err != nil {
		t.Fatal(err)
	}
	bias[beamEnd] += float32(endBias)
	torch.NoGrad(func() {
		err = m.Caption.bias.CopyFrom(torch.FromFloat32(s, bias, []int64{int64(len(bias))}, torch.CPU))
	})
	if err != nil {
		t.Fatal(err)
	}
	return m, s, in
}

// nextLogProbs returns, for image i and every prefix (start, prefix[r]...),
// the log-probabilities of the next token: [len(prefixes)][V], computed by
// teacher forcing, independently of the search.
func nextLogProbs(t *testing.T, m *Model, s *torch.Scope, in *Inputs, i int, prefixes [][]int64) [][]float32 {
	t.Helper()
	var rows [][]float32
	torch.NoGrad(func() {
		mem, err := m.visual(s, in)
		if err != nil {
			t.Fatal(err)
		}
		n, l := len(prefixes), len(prefixes[0])+1
		rep := make([]int64, n)
		for r := range rep {
			rep[r] = int64(i)
		}
		idx := torch.FromInt64(s, rep, []int64{int64(n)}, m.Device)
		mem = memory{val: mem.val.IndexSelect(0, idx), key: mem.key.IndexSelect(0, idx), pad: mem.pad.IndexSelect(0, idx)}
		var ids []int64
		for _, p := range prefixes {
			ids = append(append(ids, beamStart), p...)
		}
		x := torch.FromInt64(s, ids, []int64{int64(n), int64(l)}, m.Device)
		pad := torch.Zeros(s, []int64{int64(n), int64(l)}, torch.Bool, m.Device)
		lp, err := m.captionLogits(&fwd{s: s}, x, pad, mem).Select(1, int64(l-1)).LogSoftmax(-1).Float32s() // [n,V]
		if err != nil {
			t.Fatal(err)
		}
		v := len(lp) / n
		for r := 0; r < n; r++ {
			rows = append(rows, lp[r*v:(r+1)*v])
		}
	})
	return rows
}

// captionScore recomputes a caption's score by teacher forcing: the mean
// log-probability of its tokens, and of end when it ended before maxLen.
func captionScore(t *testing.T, m *Model, s *torch.Scope, in *Inputs, i int, ids []int64, maxLen int) float64 {
	t.Helper()
	sum, n := 0.0, 0
	for k := 0; k <= len(ids); k++ {
		next := int64(beamEnd)
		if k < len(ids) {
			next = ids[k]
		} else if len(ids) == maxLen {
			break // truncated: no end token was chosen
		}
		sum += float64(nextLogProbs(t, m, s, in, i, [][]int64{ids[:k]})[0][next])
		n++
	}
	return sum / float64(n)
}

// One beam is greedy decoding, and the score it reports is the caption's
// teacher-forced mean log-probability, for captions cut at maxLen and for
// captions that chose to end.
func TestBeamOfOneIsGreedy(t *testing.T) {
	for _, endBias := range []float64{0, 4} {
		testBeamOfOneIsGreedy(t, endBias)
	}
}

func testBeamOfOneIsGreedy(t *testing.T, endBias float64) {
	m, s, in := beamSetup(t, endBias)
	const maxLen = 6
	greedy, err := m.GenerateCaptions(s, in, beamStart, beamEnd, maxLen)
	if err != nil {
		t.Fatal(err)
	}
	beam, err := m.BeamCaptions(s, in, beamStart, beamEnd, maxLen, 1)
	if err != nil {
		t.Fatal(err)
	}
	for i := range greedy {
		if !slices.Equal(beam[i].IDs, greedy[i]) {
			t.Fatalf("end bias %v, image %d: beam of one %v, greedy %v", endBias, i, beam[i].IDs, greedy[i])
		}
		t.Logf("end bias %v, image %d: %v, score %.4f", endBias, i, beam[i].IDs, beam[i].Score)
		if want := captionScore(t, m, s, in, i, beam[i].IDs, maxLen); math.Abs(beam[i].Score-want) > 1e-4 {
			t.Fatalf("image %d: reported score %v, teacher-forced %v", i, beam[i].Score, want)
		}
	}
	if _, err := m.BeamCaptions(s, in, beamStart, beamEnd, maxLen, 0); err == nil {
		t.Fatal("zero beams were accepted")
	}
}

// With as many beams as tokens and captions of at most two tokens, beam
// search must find the best caption of all: checked against every
// candidate — end at once, one token then end, or two tokens.
func TestBeamSearchFindsTheBestShortCaption(t *testing.T) {
	m, s, in := beamSetup(t, 4)
	v := m.Config.VocabSize
	got, err := m.BeamCaptions(s, in, beamStart, beamEnd, 2, v)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < in.B; i++ {
		first := nextLogProbs(t, m, s, in, i, [][]int64{{}})[0]
		var prefixes [][]int64
		for a := 0; a < v; a++ {
			prefixes = append(prefixes, []int64{int64(a)})
		}
		second := nextLogProbs(t, m, s, in, i, prefixes)
		best, bestIDs := float64(first[beamEnd]), []int64{} // the empty caption: end at once
		for a := 0; a < v; a++ {
			if a == beamEnd {
				continue
			}
			for b := 0; b < v; b++ {
				ids := []int64{int64(a), int64(b)} // truncated at two tokens
				if b == beamEnd {
					ids = []int64{int64(a)} // one token, then end
				}
				if sc := (float64(first[a]) + float64(second[a][b])) / 2; sc > best {
					best, bestIDs = sc, ids
				}
			}
		}
		if math.Abs(got[i].Score-best) > 1e-5 || !slices.Equal(got[i].IDs, bestIDs) {
			t.Fatalf("image %d: beam search found %v (score %v), the best is %v (score %v)", i, got[i].IDs, got[i].Score, bestIDs, best)
		}
	}
}

// One step of the search on a hand-made table: the best extensions are
// kept, those that chose end leave the beam with their mean log-probability
// (end counted), and at the last step every kept extension is ended.
func TestExtendBeams(t *testing.T) {
	const end = 3
	ln := func(p float64) float32 { return float32(math.Log(p)) }
	live := []hypothesis{{ids: []int64{1}, sum: -1}, {ids: []int64{2}, sum: -2}}
	lp := []float32{ln(0.1), ln(0.2), ln(0.3), ln(0.4), ln(0.7), ln(0.1), ln(0.1), ln(0.1)} // [2 rows, V=4]
	var ended []Caption
	next := extendBeams(live, lp, 4, 3, end, false, &ended)
	// Sums: [1]+end -1.92, [1,2] -2.20, [2,0] -2.36 are the best three of eight.
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-6 }
	if len(ended) != 1 || !slices.Equal(ended[0].IDs, []int64{1}) || !near(ended[0].Score, (-1+math.Log(0.4))/2) {
		t.Fatalf("ended %+v, want [1] scored (-1+ln 0.4)/2", ended)
	}
	if len(next) != 2 || !slices.Equal(next[0].ids, []int64{1, 2}) || !near(next[0].sum, -1+math.Log(0.3)) ||
		!slices.Equal(next[1].ids, []int64{2, 0}) || !near(next[1].sum, -2+math.Log(0.7)) {
		t.Fatalf("live %+v, want [1 2] then [2 0]", next)
	}
	ended = nil
	if next := extendBeams(live, lp, 4, 2, end, true, &ended); len(next) != 0 || len(ended) != 2 ||
		!slices.Equal(ended[1].IDs, []int64{1, 2}) || !near(ended[1].Score, (-1+math.Log(0.3))/2) {
		t.Fatalf("last step: live %+v, ended %+v; want everything ended, [1 2] scored (-1+ln 0.3)/2", next, ended)
	}
}

// TestBeamPrefixesEndedImage: once one image's hypotheses have all ended
// while another's go on, every decoder row still has t tokens (a ragged
// batch made the decoder input tensor fail).
func TestBeamPrefixesEndedImage(t *testing.T) {
	const start, end = 1, 2
	live := [][]hypothesis{
		nil,                    // image 0: every hypothesis ended
		{{ids: []int64{7, 8}}}, // image 1: one live hypothesis of two tokens
	}
	got := beamPrefixes(live, 2, 3, start, end)
	want := []int64{1, 2, 2, 1, 2, 2, 1, 7, 8, 1, 7, 8}
	if !slices.Equal(got, want) {
		t.Fatalf("beamPrefixes = %v, want %v (2 images × 2 beams × 3 tokens)", got, want)
	}
}

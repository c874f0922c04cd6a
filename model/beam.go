package model

import (
	"fmt"
	"math"
	"sort"

	"github.com/e2evlp/vlp/torch"
)

// Caption is one generated caption: its token ids (start and end
// excluded) and its score, the mean log-probability of the tokens the
// decoder chose (the end token included when it was chosen).
type Caption struct {
	IDs   []int64
	Score float64
}

// hypothesis is one beam: the tokens chosen so far and their summed
// log-probability.
type hypothesis struct {
	ids []int64
	sum float64
}

// score is the length-normalised score: the mean log-probability per
// scored token. A raw sum would favour short captions.
func (h hypothesis) score(scored int) float64 { return h.sum / float64(max(scored, 1)) }

// BeamCaptions writes a caption per row with beam search: beams
// hypotheses per image are extended by every token at each step and the
// best `beams` kept by summed log-probability. A hypothesis ends when it
// chooses end, or with maxLen tokens; the caption returned is the ended
// hypothesis of the best mean log-probability. With beams = 1 it is
// GenerateCaptions (argmax at every step). As there, the image-only encoder
// pass runs once (its memory is repeated per beam) and each step reruns the
// caption decoder over the prefixes.
func (m *Model) BeamCaptions(s *torch.Scope, in *Inputs, start, end int64, maxLen, beams int) ([]Caption, error) {
	if beams < 1 {
		return nil, fmt.Errorf("%w: beams = %d, want >= 1", ErrConfig, beams)
	}
	var out []Caption
	var err error
	torch.NoGrad(func() {
		var mem memory
		if mem, err = m.visual(s, in); err != nil {
			return
		}
		b, k := in.B, beams
		// Row i·k+j of every tensor below is beam j of image i.
		rep := make([]int64, 0, b*k)
		for i := 0; i < b; i++ {
			for j := 0; j < k; j++ {
				rep = append(rep, int64(i))
			}
		}
		idx := torch.FromInt64(s, rep, []int64{int64(b * k)}, m.Device) // [B·K]
		mem = memory{val: mem.val.IndexSelect(0, idx), key: mem.key.IndexSelect(0, idx), pad: mem.pad.IndexSelect(0, idx)}
		f := &fwd{s: s}
		maxLen = min(maxLen, m.Config.MaxCaptionLen)
		live := make([][]hypothesis, b) // per image, at most k, best first
		for i := range live {
			live[i] = []hypothesis{{}} // one empty hypothesis: the k start rows are identical
		}
		ended := make([][]Caption, b)
		for t := 1; t <= maxLen; t++ {
			ids := beamPrefixes(live, k, t, start, end)
			x := torch.FromInt64(s, ids, []int64{int64(b * k), int64(t)}, m.Device)                             // [B·K,t]
			pad := torch.Zeros(s, []int64{int64(b * k), int64(t)}, torch.Bool, m.Device)                        // [B·K,t]
			logp := m.captionLogits(f, x, pad, mem).Select(1, int64(t-1)).LogSoftmax(-1).ToDtype(torch.Float32) // [B·K,V]
			var lp []float32
			if lp, err = logp.Float32s(); err != nil {
				return
			}
			v := len(lp) / (b * k)
			for i := 0; i < b; i++ {
				live[i] = extendBeams(live[i], lp[i*k*v:(i+1)*k*v], v, k, end, t == maxLen, &ended[i])
			}
			if allEnded(live) {
				break
			}
		}
		out = make([]Caption, b)
		for i := range out {
			best := Caption{Score: math.Inf(-1)}
			for _, c := range ended[i] {
				if c.Score > best.Score {
					best = c
				}
			}
			out[i] = best
		}
	})
	if err == nil {
		err = s.Err()
	}
	return out, err
}

// beamPrefixes is the decoder input of step t, [B·K,t] row-major: every
// image's live hypotheses after the start token, padded to k rows with
// copies of its last one. An image whose hypotheses have all ended still
// fills its k rows, with end tokens (their outputs are not read), so every
// row has t tokens whatever the other images do.
func beamPrefixes(live [][]hypothesis, k, t int, start, end int64) []int64 {
	ids := make([]int64, 0, len(live)*k*t)
	done := make([]int64, t-1)
	for i := range done {
		done[i] = end
	}
	for _, l := range live {
		for j := 0; j < k; j++ {
			prefix := done
			if len(l) > 0 {
				prefix = l[min(j, len(l)-1)].ids
			}
			ids = append(ids, start)
			ids = append(ids, prefix...)
		}
	}
	return ids
}

// extendBeams grows one image's live hypotheses by one token. lp holds the
// log-probabilities of the next token, v per row, row j for live[j]. Of
// all extensions the k best by summed log-probability are kept: those that
// chose end, or reached the last step, are moved to ended; the others are
// returned as the next live hypotheses.
func extendBeams(live []hypothesis, lp []float32, v, k int, end int64, last bool, ended *[]Caption) []hypothesis {
	type cand struct {
		from int
		tok  int64
		sum  float64
	}
	cands := make([]cand, 0, len(live)*v)
	for j, h := range live {
		for tok := 0; tok < v; tok++ {
			cands = append(cands, cand{from: j, tok: int64(tok), sum: h.sum + float64(lp[j*v+tok])})
		}
	}
	sort.SliceStable(cands, func(a, b int) bool { return cands[a].sum > cands[b].sum })
	next := make([]hypothesis, 0, k)
	for _, c := range cands[:min(k, len(cands))] {
		h := live[c.from]
		if c.tok == end {
			done := hypothesis{ids: h.ids, sum: c.sum}
			*ended = append(*ended, Caption{IDs: append([]int64(nil), h.ids...), Score: done.score(len(h.ids) + 1)})
			continue
		}
		grown := hypothesis{ids: append(append(make([]int64, 0, len(h.ids)+1), h.ids...), c.tok), sum: c.sum}
		if last {
			*ended = append(*ended, Caption{IDs: grown.ids, Score: grown.score(len(grown.ids))})
			continue
		}
		next = append(next, grown)
	}
	return next
}

func allEnded(live [][]hypothesis) bool {
	for _, l := range live {
		if len(l) > 0 {
			return false
		}
	}
	return true
}

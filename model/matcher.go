package model

import (
	"fmt"
	"math"

	"github.com/e2evlp/vlp/data"
	"github.com/e2evlp/vlp/torch"
)

// Matcher assigns predictions to targets one image at a time (DETR's
// HungarianMatcher): cost = Class·(−p(class)) + L1·|box−target|₁ +
// GIoU·(−GIoU), minimised exactly by Assign. It computes no gradient: the
// probabilities and boxes are detached and copied to the host once for all
// decoder layers — the step's one host sync before the loss.
type Matcher struct {
	Class, L1, GIoU float64
}

// Match is one image's assignment: query Query[i] predicts target Target[i].
type Match struct {
	Query, Target []int
}

// MatchAll matches every layer: logits [Ly,B,Q,C+1], boxes [Ly,B,Q,4] →
// result[layer][image]. s holds the temporaries.
// ly and q are the number of decoder layers and queries; targets has B.
func (mt Matcher) MatchAll(s *torch.Scope, logits, boxes *torch.Tensor, targets []data.DetectionTarget, ly, q int, dev torch.Device) ([][]Match, error) {
	b := len(targets)
	nmax := 0
	for _, t := range targets {
		nmax = max(nmax, len(t.Classes))
	}
	out := make([][]Match, ly)
	for l := range out {
		out[l] = make([]Match, b)
	}
	if nmax == 0 {
		return out, nil
	}
	// Probability of each image's target classes: gather along classes.
	idx := make([]int64, b*nmax) // [B,Nmax], padded with class 0 (ignored)
	for i, t := range targets {
		copy(idx[i*nmax:], t.Classes)
	}
	index := torch.FromInt64(s, idx, []int64{1, int64(b), 1, int64(nmax)}, dev).
		Expand(int64(ly), int64(b), int64(q), int64(nmax)) // [Ly,B,Q,Nmax]
	prob := logits.Detach().Softmax(-1).Gather(-1, index) // [Ly,B,Q,Nmax]
	// One host read for both: the probabilities, then the boxes.
	both, err := torch.Cat([]*torch.Tensor{
		prob.ToDtype(torch.Float32).Reshape(-1),           // [Ly·B·Q·Nmax]
		boxes.Detach().ToDtype(torch.Float32).Reshape(-1), // [Ly·B·Q·4]
	}, 0).Float32s() // host [Ly·B·Q·(Nmax+4)]
	if err != nil {
		return nil, err
	}
	p, bx := both[:ly*b*q*nmax], both[ly*b*q*nmax:] // [Ly,B,Q,Nmax], [Ly,B,Q,4]
	// A diverged model gives NaN costs, which no assignment can rank:
	// report it as the non-finite loss it will become.
	for _, vs := range [][]float32{p, bx} {
		for _, v := range vs {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return nil, fmt.Errorf("%w: matcher input %v", ErrNonFinite, v)
			}
		}
	}
	for l := 0; l < ly; l++ {
		for i, t := range targets {
			n := len(t.Classes)
			if n == 0 {
				out[l][i] = Match{Query: []int{}, Target: []int{}}
				continue
			}
			cost := make([]float64, q*n) // [Q,n]
			tb := make([]Box, n)
			for j := range tb {
				tb[j] = Box{float64(t.Boxes[j][0]), float64(t.Boxes[j][1]), float64(t.Boxes[j][2]), float64(t.Boxes[j][3])}
			}
			for k := 0; k < q; k++ {
				base := ((l*b+i)*q + k)
				pb := Box{float64(bx[base*4]), float64(bx[base*4+1]), float64(bx[base*4+2]), float64(bx[base*4+3])}
				pxy := CxcywhToXyxy(pb)
				for j := 0; j < n; j++ {
					l1 := 0.0
					for c := 0; c < 4; c++ {
						d := pb[c] - tb[j][c]
						if d < 0 {
							d = -d
						}
						l1 += d
					}
					cost[k*n+j] = -mt.Class*float64(p[base*nmax+j]) + mt.L1*l1 - mt.GIoU*GIoU(pxy, CxcywhToXyxy(tb[j]))
				}
			}
			rows, cols := Assign(cost, q, n)
			out[l][i] = Match{Query: rows, Target: cols}
		}
	}
	return out, nil
}

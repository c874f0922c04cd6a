package model

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/e2evlp/vlp/data"
	"github.com/e2evlp/vlp/torch"
)

// The set criterion and the text losses, by name:
//
//	mlm        CE over masked positions (unmasked ones are ignored)
//	itm        CE on [CLS], 2 classes
//	caption    CE over next caption tokens (padding ignored)
//	det_ce     CE over C+1 classes, the no-object class weighted NoObject
//	det_l1     Σ|box − target|₁ over matched queries / number of boxes
//	det_giou   Σ(1 − GIoU) over matched queries / number of boxes
//	det_attr   soft-target CE on matched queries: an object with k
//	           attributes has target 1/k on each, so every attribute is
//	           pushed up equally and the loss stays a proper CE (the
//	           attribute head is a softmax, as VG attribute heads are);
//	           averaged over matched objects that have attributes
//
// and det_*_<l> the same for decoder layer l < Ly−1 (the auxiliary losses).
// "total" is Σ weight·loss.

// Losses holds each loss (a scalar tensor in the step's scope) and the total.
type Losses struct {
	ByName    map[string]*torch.Tensor
	Total     *torch.Tensor
	MatchTime time.Duration // spent in the matcher (host copy and assignment)
}

// Names returns the loss names, sorted.
func (l Losses) Names() []string {
	n := make([]string, 0, len(l.ByName))
	for k := range l.ByName {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// Values copies every loss and the total to the host in one transfer.
func (l Losses) Values() (map[string]float64, error) {
	names := l.Names()
	ts := make([]*torch.Tensor, 0, len(names)+1)
	for _, n := range names {
		ts = append(ts, l.ByName[n].ToDtype(torch.Float32)) // bf16 under autocast
	}
	ts = append(ts, l.Total.ToDtype(torch.Float32))
	v, err := torch.Stack(ts, 0).Detach().Float32s() // [n+1]
	if err != nil {
		return nil, fmt.Errorf("model: read losses: %w", err)
	}
	out := make(map[string]float64, len(v))
	for i, n := range names {
		out[n] = float64(v[i])
	}
	out["total"] = float64(v[len(names)])
	return out, nil
}

// weightOf maps a loss name to its weight.
func (w LossWeights) weightOf(name string) float64 {
	if strings.HasPrefix(name, "det_") {
		kind, _, _ := strings.Cut(name[4:], "_")
		switch kind {
		case "ce":
			return w.Class
		case "l1":
			return w.L1
		case "giou":
			return w.GIoU
		case "attr":
			return w.Attribute
		}
		return 0
	}
	switch name {
	case "mlm":
		return w.MLM
	case "itm":
		return w.ITM
	case "caption":
		return w.Caption
	}
	return 0
}

// Criterion computes the losses of a forward pass.
func (m *Model) Criterion(s *torch.Scope, in *Inputs, out *Outputs) (Losses, error) {
	c := m.Config
	w := c.Loss
	ls := Losses{ByName: map[string]*torch.Tensor{}}
	zero := func() *torch.Tensor { return torch.Zeros(s, []int64{}, torch.Float32, m.Device) }
	if in.NumMasked > 0 {
		ls.ByName["mlm"] = torch.CrossEntropy(out.MLMLogits, in.MLMTargets, nil, data.IgnoreIndex, torch.ReduceMean)
	} else {
		ls.ByName["mlm"] = zero()
	}
	ls.ByName["itm"] = torch.CrossEntropy(out.ITMLogits, in.ITMLabels, nil, data.IgnoreIndex, torch.ReduceMean)
	v := int64(c.VocabSize)
	ls.ByName["caption"] = torch.CrossEntropy(out.CapLogits.Reshape(-1, v),
		in.CapTarget.Reshape(-1), nil, data.IgnoreIndex, torch.ReduceMean)

	matcher := Matcher{Class: w.Class, L1: w.L1, GIoU: w.GIoU}
	t0 := time.Now()
	matches, err := matcher.MatchAll(s, out.Det.Logits, out.Det.Boxes, in.Targets, c.DecoderLayers, c.NumQueries, m.Device)
	ls.MatchTime = time.Since(t0)
	if err != nil {
		return ls, fmt.Errorf("model: matcher: %w", err)
	}
	// The no-object class (last) weighs NoObject in the CE.
	cw := make([]float32, c.NumClasses+1)
	for i := range cw {
		cw[i] = 1
	}
	cw[c.NumClasses] = float32(w.NoObject)
	classWeight := torch.FromFloat32(s, cw, []int64{int64(len(cw))}, m.Device) // [C+1]
	ly := len(matches)
	for l := 0; l < ly; l++ {
		suffix := ""
		if l < ly-1 {
			if !w.Aux {
				continue
			}
			suffix = fmt.Sprintf("_%d", l)
		}
		d := m.detectionLosses(s, in, out, l, matches[l], classWeight)
		for k, t := range d {
			ls.ByName["det_"+k+suffix] = t
		}
	}
	for _, name := range ls.Names() {
		term := ls.ByName[name].MulScalar(w.weightOf(name))
		if ls.Total == nil {
			ls.Total = term
		} else {
			ls.Total = torch.Add(ls.Total, term)
		}
	}
	if err := s.Err(); err != nil {
		return ls, fmt.Errorf("model: criterion: %w", err)
	}
	return ls, nil
}

// detectionLosses are layer l's ce, l1, giou and attr.
func (m *Model) detectionLosses(s *torch.Scope, in *Inputs, out *Outputs, l int, match []Match, classWeight *torch.Tensor) map[string]*torch.Tensor {
	c := m.Config
	sel := func(t *torch.Tensor) *torch.Tensor { return t.Select(0, int64(l)) }
	logits, attrs, boxes := sel(out.Det.Logits), sel(out.Det.Attrs), sel(out.Det.Boxes) // [B,Q,C+1], [B,Q,A], [B,Q,4]
	b, q := in.B, c.NumQueries
	tgtClass := make([]int64, b*q) // [B·Q], no-object unless matched
	for i := range tgtClass {
		tgtClass[i] = int64(c.NumClasses)
	}
	var flat []int64     // [M] b·Q+q of matched queries
	var tboxes []float32 // [M,4]
	var tattr []float32  // [M,A] normalised multi-hot
	withAttr := 0
	numBoxes := 0
	for i, t := range in.Targets {
		numBoxes += len(t.Classes)
		for k, qi := range match[i].Query {
			j := match[i].Target[k]
			tgtClass[i*q+qi] = t.Classes[j]
			flat = append(flat, int64(i*q+qi))
			tboxes = append(tboxes, t.Boxes[j][:]...)
			row := make([]float32, c.NumAttributes)
			if j < len(t.Attributes) && len(t.Attributes[j]) > 0 {
				for _, a := range t.Attributes[j] {
					row[a] += 1 / float32(len(t.Attributes[j]))
				}
				withAttr++
			}
			tattr = append(tattr, row...)
		}
	}
	dev := m.Device
	res := map[string]*torch.Tensor{}
	res["ce"] = torch.CrossEntropy(logits.Reshape(int64(b*q), int64(c.NumClasses+1)),
		torch.FromInt64(s, tgtClass, []int64{int64(b * q)}, dev), classWeight, data.IgnoreIndex, torch.ReduceMean)
	if len(flat) == 0 {
		z := torch.Zeros(s, []int64{}, torch.Float32, dev)
		res["l1"], res["giou"], res["attr"] = z, z, z
		return res
	}
	m64 := int64(len(flat))
	idx := torch.FromInt64(s, flat, []int64{m64}, dev)       // [M]
	pb := boxes.Reshape(int64(b*q), 4).IndexSelect(0, idx)   // [M,4]
	tb := torch.FromFloat32(s, tboxes, []int64{m64, 4}, dev) // [M,4]
	nb := float64(max(numBoxes, 1))
	res["l1"] = torch.Sub(pb, tb).Abs().SumAll().DivScalar(nb)
	giou := giouPairs(boxToXyxy(pb), boxToXyxy(tb)) // [M]
	res["giou"] = giou.RSubScalar(1).SumAll().DivScalar(nb)
	a := int64(c.NumAttributes)
	la := attrs.Reshape(int64(b*q), a).IndexSelect(0, idx).LogSoftmax(-1) // [M,A]
	ta := torch.FromFloat32(s, tattr, []int64{m64, a}, dev)               // [M,A]
	res["attr"] = torch.Mul(la, ta).SumAll().Neg().DivScalar(float64(max(withAttr, 1)))
	return res
}

// boxToXyxy is CxcywhToXyxy on a tensor.
func boxToXyxy(b *torch.Tensor) *torch.Tensor { // [M,4] -> [M,4]
	cx, cy := b.Narrow(1, 0, 1), b.Narrow(1, 1, 1) // [M,1]
	hw, hh := b.Narrow(1, 2, 1).MulScalar(0.5), b.Narrow(1, 3, 1).MulScalar(0.5)
	return torch.Cat([]*torch.Tensor{torch.Sub(cx, hw), torch.Sub(cy, hh), torch.Add(cx, hw), torch.Add(cy, hh)}, 1)
}

// giouPairs is GIoU of row i of a with row i of b, xyxy, the tensor twin
// of GIoU in boxops.go.
func giouPairs(a, b *torch.Tensor) *torch.Tensor { // [M,4], [M,4] -> [M]
	col := func(t *torch.Tensor, k int64) *torch.Tensor { return t.Narrow(1, k, 1) } // [M,1]
	area := func(t *torch.Tensor) *torch.Tensor {
		return torch.Mul(torch.Sub(col(t, 2), col(t, 0)), torch.Sub(col(t, 3), col(t, 1)))
	}
	lo := torch.Maximum(a.Narrow(1, 0, 2), b.Narrow(1, 0, 2)) // [M,2]
	hi := torch.Minimum(a.Narrow(1, 2, 2), b.Narrow(1, 2, 2))
	wh := torch.Sub(hi, lo).ClampMin(0)
	inter := torch.Mul(col(wh, 0), col(wh, 1)) // [M,1]
	union := torch.Sub(torch.Add(area(a), area(b)), inter)
	iou := torch.Div(inter, union)
	elo := torch.Minimum(a.Narrow(1, 0, 2), b.Narrow(1, 0, 2))
	ehi := torch.Maximum(a.Narrow(1, 2, 2), b.Narrow(1, 2, 2))
	ewh := torch.Sub(ehi, elo).ClampMin(0)
	enc := torch.Mul(col(ewh, 0), col(ewh, 1))
	g := torch.Sub(iou, torch.Div(torch.Sub(enc, union), enc)) // [M,1]
	return g.SqueezeDim(1)
}

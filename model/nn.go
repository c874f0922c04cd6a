package model

import (
	"math"

	"github.com/e2evlp/vlp/torch"
)

// The transformer's building blocks: linear, LayerNorm, attention and FFN,
// each a struct of parameter handles with a forward method.

// fwd is what every forward method needs: the step's scope, whether it
// trains (dropout, BatchNorm statistics), and the dropout generator.
type fwd struct {
	s       *torch.Scope
	train   bool
	dropout float64
	gen     *torch.Generator
}

// drop applies dropout when training with a non-zero rate.
func (f *fwd) drop(x *torch.Tensor) *torch.Tensor {
	if !f.train || f.dropout == 0 {
		return x
	}
	return torch.Dropout(x, f.dropout, true, f.gen)
}

// attnDropout is the rate the fused attention applies to its weights.
func (f *fwd) attnDropout() float64 {
	if !f.train {
		return 0
	}
	return f.dropout
}

type linearP struct{ w, b *torch.Tensor }

// newLinear: weight [out,in] ~ N(0, 0.02²) (BERT), bias zero.
func newLinear(ps *paramSet, name string, in, out int, bias bool) linearP {
	l := linearP{w: ps.normal(name+".weight", 0.02, int64(out), int64(in))}
	if bias {
		l.b = ps.constant(name+".bias", 0, false, int64(out))
	}
	return l
}

func (l linearP) forward(x *torch.Tensor) *torch.Tensor { // [..., in] -> [..., out]
	return torch.Linear(x, l.w, l.b)
}

type layerNormP struct {
	w, b  *torch.Tensor
	shape []int64 // [d]: normalised over the last dim
}

func newLayerNorm(ps *paramSet, name string, d int) layerNormP {
	return layerNormP{w: ps.constant(name+".weight", 1, false, int64(d)), b: ps.constant(name+".bias", 0, false, int64(d)), shape: []int64{int64(d)}}
}

// layerNormEps is PyTorch's nn.LayerNorm default.
const layerNormEps = 1e-5

func (l layerNormP) forward(x *torch.Tensor) *torch.Tensor { // [..., d] -> [..., d]
	return torch.LayerNorm(x, l.shape, l.w, l.b, layerNormEps)
}

// attnP is nn.MultiheadAttention's parameter layout: the q, k, v
// projections stacked in one [3d, d] matrix, then the output projection.
type attnP struct {
	inW, inB, outW, outB *torch.Tensor
	heads                int
}

// newAttention: Xavier-uniform projections (nn.MultiheadAttention), zero biases.
func newAttention(ps *paramSet, name string, d, heads int) attnP {
	return attnP{
		inW:   ps.uniform(name+".in_proj_weight", math.Sqrt(6/float64(d+d)), int64(3*d), int64(d)),
		inB:   ps.constant(name+".in_proj_bias", 0, false, int64(3*d)),
		outW:  ps.uniform(name+".out_proj.weight", math.Sqrt(6/float64(d+d)), int64(d), int64(d)),
		outB:  ps.constant(name+".out_proj.bias", 0, false, int64(d)),
		heads: heads,
	}
}

// forward is one fused native call: projections, scaled dot-product
// attention with the key-padding mask (true = ignore) and the optional
// causal mask, dropout on the weights, output projection. Passing the same
// tensor for q and k (and v) lets the shim fuse the projections.
func (a attnP) forward(f *fwd, q, k, v, keyPad *torch.Tensor, causal bool) *torch.Tensor { // [B,Lq,d], [B,Lk,d], [B,Lk,d], [B,Lk] -> [B,Lq,d]
	return torch.MultiHeadAttention(q, k, v, torch.MHAWeights{InWeight: a.inW, InBias: a.inB, OutWeight: a.outW, OutBias: a.outB, Heads: a.heads},
		keyPad, causal, f.attnDropout(), f.gen)
}

type ffnP struct{ lin1, lin2 linearP }

func newFFN(ps *paramSet, name string, d, hidden int) ffnP {
	return ffnP{lin1: newLinear(ps, name+".lin1", d, hidden, true), lin2: newLinear(ps, name+".lin2", hidden, d, true)}
}

func (m ffnP) forward(f *fwd, x *torch.Tensor) *torch.Tensor { // [..., d] -> [..., d]
	return m.lin2.forward(f.drop(m.lin1.forward(x).Relu())) // ReLU as DETR
}

func sqrtF(n int) float64 { return math.Sqrt(float64(n)) }

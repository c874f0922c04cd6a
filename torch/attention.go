package torch

import "unsafe"

// ScaledDotProductAttention is softmax(q kᵀ / √D + mask) v in one native call:
// q [B, H, L, D], k [B, H, S, D], v [B, H, S, Dv] → [B, H, L, Dv].
// keyPaddingMask is nil or bool [B, S] with true at padding keys; causal lets query i see keys
// j ≤ i only. A query whose keys are all masked attends uniformly rather than producing NaN.
// On LibTorch ≥ 2.1 it runs at::scaled_dot_product_attention (flash / memory-efficient kernels).
func ScaledDotProductAttention(q, k, v, keyPaddingMask *Tensor, causal bool) *Tensor {
	return ScaledDotProductAttentionDropout(q, k, v, keyPaddingMask, causal, 0, nil)
}

// ScaledDotProductAttentionDropout adds dropout with probability p on the attention weights,
// drawn from g (nil: the default generator; on LibTorch ≥ 2.1 a nil g lets the fused kernels
// draw the mask themselves).
func ScaledDotProductAttentionDropout(q, k, v, keyPaddingMask *Tensor, causal bool, p float64, g *Generator) *Tensor {
	s := pick(q.scopeOf(), k.scopeOf(), v.scopeOf(), keyPaddingMask.scopeOf())
	hq, err := q.handle("attention")
	if err != nil {
		return errTensor(s, err)
	}
	hk, err := k.handle("attention")
	if err != nil {
		return errTensor(s, err)
	}
	hv, err := v.handle("attention")
	if err != nil {
		return errTensor(s, err)
	}
	hm, err := keyPaddingMask.optHandle("attention")
	if err != nil {
		return errTensor(s, err)
	}
	r := &Tensor{}
	return finish(s, r, call(fn.sdpa, hq, hk, hv, hm, b2u(causal), f64(p), g.handle(), uintptr(unsafe.Pointer(&r.h))),
		"attention", q, k, v, keyPaddingMask)
}

// MHAWeights are the parameters of one multi-head attention block, laid out as in
// torch.nn.MultiheadAttention: InWeight [3E, E] (query, key, value rows), InBias [3E] or nil,
// OutWeight [E, E], OutBias [E] or nil.
type MHAWeights struct {
	InWeight, InBias, OutWeight, OutBias *Tensor
	Heads                                int
}

// MultiHeadAttention is torch.nn.MultiheadAttention (batch_first) as one native call: in
// projections, scaled dot-product attention with the masks, out projection.
// query [B, L, E], key and value [B, S, E] → [B, L, E]. Pass the same *Tensor for query, key
// and value (self-attention) or for query and key (DETR's q = k = x + pos) and the projections
// fuse into fewer matmuls. dropout applies to the attention weights, drawn from g.
func MultiHeadAttention(query, key, value *Tensor, w MHAWeights, keyPaddingMask *Tensor, causal bool, dropout float64, g *Generator) *Tensor {
	s := pick(query.scopeOf(), key.scopeOf(), value.scopeOf(), keyPaddingMask.scopeOf(), w.InWeight.scopeOf())
	var hs [8]uintptr
	var err error
	for i, t := range []*Tensor{query, key, value, w.InWeight, w.OutWeight} {
		if hs[i], err = t.handle("multi_head_attention"); err != nil {
			return errTensor(s, err)
		}
	}
	for i, t := range []*Tensor{w.InBias, w.OutBias, keyPaddingMask} {
		if hs[5+i], err = t.optHandle("multi_head_attention"); err != nil {
			return errTensor(s, err)
		}
	}
	r := &Tensor{}
	return finish(s, r, call(fn.mha, hs[0], hs[1], hs[2], hs[3], hs[5], hs[4], hs[6], uintptr(w.Heads), hs[7], b2u(causal),
		f64(dropout), g.handle(), uintptr(unsafe.Pointer(&r.h))), "multi_head_attention", query, key, w.InWeight)
}

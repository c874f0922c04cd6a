package model

import (
	"fmt"
	"strings"

	"github.com/e2evlp/vlp/torch"
)

// The ResNet backbone, laid out and named exactly as torchvision's (so its
// state dicts load as they are): conv1, bn1, layer1..layer4 of basic blocks
// (18, 34) or bottlenecks (50, 101, 152, stride on the 3×3 as in
// torchvision's "v1.5"), each with a downsample (1×1 conv + BN) where the
// shape changes. The output is C5, the last stage's feature map.

// resnetLayout: block kind and blocks per stage for each depth.
var resnetLayout = map[int]struct {
	bottleneck bool
	blocks     [4]int
}{
	18: {false, [4]int{2, 2, 2, 2}}, 34: {false, [4]int{3, 4, 6, 3}},
	50: {true, [4]int{3, 4, 6, 3}}, 101: {true, [4]int{3, 4, 23, 3}}, 152: {true, [4]int{3, 8, 36, 3}},
}

// bnP is a BatchNorm2d's parameters and running statistics.
type bnP struct{ w, b, rm, rv *torch.Tensor }

func newBN(ps *paramSet, name string, c int) bnP {
	return bnP{
		w:  ps.constant(name+".weight", 1, false, int64(c)),
		b:  ps.constant(name+".bias", 0, false, int64(c)),
		rm: ps.constant(name+".running_mean", 0, true, int64(c)),
		rv: ps.constant(name+".running_var", 1, true, int64(c)),
	}
}

// BatchNorm constants of torchvision's ResNet.
const bnMomentum, bnEps = 0.1, 1e-5

// forward: frozen → DETR's FrozenBatchNorm2d; else batch statistics while
// training (running stats updated in place) and running stats in eval.
func (bn bnP) forward(f *fwd, x *torch.Tensor, frozen bool) *torch.Tensor { // [B,C,H,W]
	mode := torch.BatchNormEval
	switch {
	case frozen:
		mode = torch.BatchNormFrozen
	case f.train:
		mode = torch.BatchNormTrain
	}
	return torch.BatchNorm(x, bn.w, bn.b, bn.rm, bn.rv, mode, bnMomentum, bnEps)
}

type convP struct {
	w                     *torch.Tensor // [out,in,k,k], no bias (followed by BN)
	stride, pad, dilation int
}

func newConv(ps *paramSet, name string, in, out, k, stride, dilation int) convP {
	return convP{w: ps.kaiming(name+".weight", int64(out), int64(in), int64(k), int64(k)),
		stride: stride, pad: dilation * (k - 1) / 2, dilation: dilation}
}

func (c convP) forward(x *torch.Tensor) *torch.Tensor { // [B,in,H,W] -> [B,out,H',W']
	s, p, d := int64(c.stride), int64(c.pad), int64(c.dilation)
	return torch.Conv2d(x, c.w, nil, torch.Conv2dOptions{Stride: [2]int64{s, s}, Padding: [2]int64{p, p}, Dilation: [2]int64{d, d}})
}

// block is one residual block: two (basic) or three (bottleneck) conv+BN,
// plus the optional downsample.
type block struct {
	convs  []convP
	bns    []bnP
	down   *convP
	downBN bnP
}

func newBlock(ps *paramSet, bottleneck bool, in, width, stride, dilation int) (block, int) {
	var b block
	out := width
	if bottleneck {
		out = width * 4
		b.convs = []convP{newConv(ps, "conv1", in, width, 1, 1, 1), newConv(ps, "conv2", width, width, 3, stride, dilation),
			newConv(ps, "conv3", width, out, 1, 1, 1)}
		b.bns = []bnP{newBN(ps, "bn1", width), newBN(ps, "bn2", width), newBN(ps, "bn3", out)}
	} else {
		b.convs = []convP{newConv(ps, "conv1", in, width, 3, stride, dilation), newConv(ps, "conv2", width, width, 3, 1, dilation)}
		b.bns = []bnP{newBN(ps, "bn1", width), newBN(ps, "bn2", width)}
	}
	if stride != 1 || in != out {
		d := newConv(ps, "downsample.0", in, out, 1, stride, 1)
		b.down, b.downBN = &d, newBN(ps, "downsample.1", out)
	}
	return b, out
}

func (b block) forward(f *fwd, x *torch.Tensor, frozenBN bool) *torch.Tensor { // [B,in,H,W] -> [B,out,H/s,W/s]
	y := x
	for i, c := range b.convs {
		y = b.bns[i].forward(f, c.forward(y), frozenBN)
		if i < len(b.convs)-1 {
			y = y.Relu()
		}
	}
	skip := x
	if b.down != nil {
		skip = b.downBN.forward(f, b.down.forward(x), frozenBN)
	}
	return torch.Add(y, skip).Relu()
}

// Backbone is a ResNet up to C5.
type Backbone struct {
	conv1        convP
	bn1          bnP
	stages       [4][]block
	frozenBN     bool
	noStemPool   bool // no max-pool after the stem (Config.NoStemPool)
	channelsLast bool // the images laid out NHWC before the stem (Config.ChannelsLast)
	OutChannels  int  // channels of C5: 512·width/64 (basic) or 2048·width/64
}

func newBackbone(ps *paramSet, c Config) (*Backbone, error) {
	lay, ok := resnetLayout[c.ResNetDepth]
	if !ok {
		return nil, fmt.Errorf("%w: ResNetDepth %d", ErrConfig, c.ResNetDepth)
	}
	ps = ps.sub("backbone")
	ps.backbone = true
	// The stem and the first 4−TrainableStages stages are frozen (DETR).
	firstTrainable := 4 - c.TrainableStages
	stem := *ps
	stem.frozen = firstTrainable > 0
	bb := &Backbone{frozenBN: c.FrozenBN, noStemPool: c.NoStemPool, channelsLast: c.ChannelsLast}
	w := c.ResNetWidth
	bb.conv1 = newConv(&stem, "conv1", 3, w, 7, 2, 1)
	bb.bn1 = newBN(&stem, "bn1", w)
	in := w
	for s := 0; s < 4; s++ {
		sp := ps.sub(fmt.Sprintf("layer%d", s+1))
		sp.frozen = s < firstTrainable
		stride := 1
		if s > 0 {
			stride = 2
		}
		for i := 0; i < lay.blocks[s]; i++ {
			st, dil := 1, 1
			if i == 0 {
				st = stride
			}
			if s == 3 && c.DilateC5 { // DETR-DC5: stride 16, dilation 2 after the first block
				st = 1
				if i > 0 {
					dil = 2
				}
			}
			var b block
			b, in = newBlock(sp.sub(fmt.Sprint(i)), lay.bottleneck, in, w<<s, st, dil)
			bb.stages[s] = append(bb.stages[s], b)
		}
	}
	bb.OutChannels = in
	if c.FrozenBN {
		// FrozenBatchNorm's affine parameters are constants too.
		for _, p := range ps.list {
			if p.Backbone && isBNParam(p.Name) && !p.Buffer {
				p.Frozen = true
				if p.T != nil {
					p.T.RequiresGrad(false)
				}
			}
		}
	}
	return bb, nil
}

func (bb *Backbone) forward(f *fwd, x *torch.Tensor) *torch.Tensor { // [B,3,H,W] -> [B,C5,H/32,W/32] (H/16 dilated or without the stem pool, H/8 both)
	if bb.channelsLast {
		// The same values laid out NHWC; every op below keeps the layout, C5 included.
		x = x.ChannelsLast() // [B,3,H,W]
	}
	x = bb.bn1.forward(f, bb.conv1.forward(x), bb.frozenBN).Relu()
	if !bb.noStemPool {
		x = torch.MaxPool2d(x, torch.MaxPool2dOptions{Kernel: [2]int64{3, 3}, Stride: [2]int64{2, 2}, Padding: [2]int64{1, 1}})
	}
	for _, st := range bb.stages {
		for _, b := range st {
			x = b.forward(f, x, bb.frozenBN)
		}
	}
	return x
}

// isBNParam reports whether a backbone tensor name is a BatchNorm's.
func isBNParam(name string) bool {
	return strings.Contains(name, ".bn") || strings.Contains(name, "downsample.1.")
}

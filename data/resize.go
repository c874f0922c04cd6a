package data

import (
	"errors"
	"fmt"
	"math"
)

// ErrImageConfig: an ImageConfig field is out of range.
var ErrImageConfig = errors.New("data: invalid image config")

// ImageConfig says how images are resized. Either Square > 0: every image is
// stretched to Square×Square (aspect not kept); or the shorter side becomes
// ShorterSide pixels, unless that makes the longer side exceed MaxSide, in
// which case the longer side becomes MaxSide (DETR's rule). Boxes are
// normalised to the un-padded image, so they follow either resize unchanged.
type ImageConfig struct {
	ShorterSide int // target shorter side in pixels
	MaxSide     int // cap on the longer side in pixels
	Square      int // if > 0, resize to Square×Square instead
	// PadMultiple rounds the padded batch height and width up to a multiple
	// of this many pixels (1: no rounding). 32 makes every image-token grid of
	// a stride-32 backbone the same size for every batch shape.
	PadMultiple int
}

// DefaultImageConfig is the base preset's input size: shorter side 512,
// longer side at most 853 (the 3:5 aspect cap DETR uses for 800/1333, at
// 512 px).
func DefaultImageConfig() ImageConfig {
	return ImageConfig{ShorterSide: 512, MaxSide: 853, PadMultiple: 1}
}

// SquareImageConfig resizes every image to side×side.
func SquareImageConfig(side int) ImageConfig { return ImageConfig{Square: side, PadMultiple: 1} }

// Validate checks the fields.
func (c ImageConfig) Validate() error {
	if c.PadMultiple < 1 {
		return fmt.Errorf("%w: PadMultiple %d < 1", ErrImageConfig, c.PadMultiple)
	}
	if c.Square > 0 {
		return nil
	}
	if c.Square < 0 {
		return fmt.Errorf("%w: Square %d < 0", ErrImageConfig, c.Square)
	}
	if c.ShorterSide < 1 {
		return fmt.Errorf("%w: ShorterSide %d < 1 (and Square not set)", ErrImageConfig, c.ShorterSide)
	}
	if c.MaxSide < c.ShorterSide {
		return fmt.Errorf("%w: MaxSide %d < ShorterSide %d", ErrImageConfig, c.MaxSide, c.ShorterSide)
	}
	return nil
}

// TargetSize returns the size an image of w×h pixels is resized to.
func (c ImageConfig) TargetSize(w, h int) (tw, th int) {
	if c.Square > 0 {
		return c.Square, c.Square
	}
	short, long := min(w, h), max(w, h)
	scale := float64(c.ShorterSide) / float64(short)
	if float64(long)*scale > float64(c.MaxSide) {
		scale = float64(c.MaxSide) / float64(long)
	}
	tw = max(1, int(math.Round(float64(w)*scale)))
	th = max(1, int(math.Round(float64(h)*scale)))
	// Rounding must not push either side past its bound.
	if tw > c.MaxSide {
		tw = c.MaxSide
	}
	if th > c.MaxSide {
		th = c.MaxSide
	}
	return tw, th
}

// ImageNet statistics (torchvision's Normalize defaults), per RGB channel.
var (
	ImageNetMean = [3]float32{0.485, 0.456, 0.406}
	ImageNetStd  = [3]float32{0.229, 0.224, 0.225}
)

// Image is a resized, ImageNet-normalised image: [3,H,W] float32, channel
// planes R, G, B.
type Image struct {
	W, H int
	Pix  []float32 // [3,H,W]
}

// filterTaps holds, for every output coordinate, the first input coordinate
// and the weights of a separable resampling filter.
type filterTaps struct {
	start []int32
	count []int32   // non-zero taps of each output, ≤ n
	n     int       // stride of w
	w     []float32 // [out][n], the first count[o] used
}

// triangleTaps computes a linear (tent) filter from in to out samples. When
// shrinking, the tent is widened by the scale factor so every input pixel
// contributes (anti-aliasing, as PIL's and torchvision's antialiased bilinear
// resize do); when enlarging it is plain bilinear interpolation. Pixel
// centres sit at i+0.5 (align_corners=False).
func triangleTaps(in, out int) filterTaps {
	scale := float64(in) / float64(out)
	support := 1.0
	if scale > 1 {
		support = scale
	}
	n := int(math.Ceil(support))*2 + 1
	ft := filterTaps{start: make([]int32, out), count: make([]int32, out), n: n, w: make([]float32, out*n)}
	for o := 0; o < out; o++ {
		center := (float64(o) + 0.5) * scale
		// Taps i with |i+0.5-center| < support, clipped to the image.
		lo := max(0, int(math.Floor(center-support-0.5))+1)
		hi := min(in, int(math.Ceil(center+support-0.5)))
		if hi <= lo { // cannot happen for in ≥ 1; keep one tap
			lo, hi = min(lo, in-1), min(lo, in-1)+1
		}
		ws := ft.w[o*n : o*n+(hi-lo)]
		var sum float64
		for k := range ws {
			d := math.Abs((float64(lo+k) + 0.5 - center) / support)
			if d < 1 {
				ws[k] = float32(1 - d)
				sum += 1 - d
			}
		}
		if sum == 0 {
			ws[0], sum = 1, 1
		}
		for k := range ws {
			ws[k] = float32(float64(ws[k]) / sum)
		}
		ft.start[o], ft.count[o] = int32(lo), int32(hi-lo)
	}
	return ft
}

// ResizeNormalize resizes src to tw×th with an antialiased bilinear filter
// and returns it ImageNet-normalised, channels first.
func ResizeNormalize(src *RGB, tw, th int) *Image {
	dst := &Image{W: tw, H: th, Pix: getFloats(3 * tw * th)} // every element is written
	resizeNormalizeInto(src, tw, th, dst.Pix, tw, th)
	return dst
}

// resizeNormalizeInto writes the normalised image into dst, laid out as
// [3,H,W] with H ≥ th and W ≥ tw: the image top-left, zeros in the rest (the
// padding of a batch row). Every element of dst[:3*H*W] is written.
func resizeNormalizeInto(src *RGB, tw, th int, dst []float32, W, H int) {
	hx := triangleTaps(src.W, tw)
	vy := triangleTaps(src.H, th)
	// Horizontal pass: only the input rows some output row needs.
	rowLo, rowHi := int(vy.start[0]), int(vy.start[th-1]+vy.count[th-1])
	tmp := getFloats((rowHi - rowLo) * tw * 3)
	defer putFloats(tmp)
	for y := rowLo; y < rowHi; y++ {
		in := src.Pix[y*src.W*3 : (y+1)*src.W*3]
		out := tmp[(y-rowLo)*tw*3 : (y-rowLo+1)*tw*3]
		for x := 0; x < tw; x++ {
			s := int(hx.start[x])
			ws := hx.w[x*hx.n : x*hx.n+int(hx.count[x])]
			p := in[s*3 : (s+len(ws))*3]
			var r, g, b float32
			for k, wk := range ws {
				q := p[3*k : 3*k+3 : 3*k+3]
				r += wk * float32(q[0])
				g += wk * float32(q[1])
				b += wk * float32(q[2])
			}
			o := out[3*x : 3*x+3 : 3*x+3]
			o[0], o[1], o[2] = r, g, b
		}
	}
	// Vertical pass, fused with normalisation: v/255 - mean)/std = v*a + c.
	var a, c [3]float32
	for ch := 0; ch < 3; ch++ {
		a[ch] = 1 / (255 * ImageNetStd[ch])
		c[ch] = -ImageNetMean[ch] / ImageNetStd[ch]
	}
	plane := W * H
	dst = dst[:3*plane]
	acc := make([]float32, tw*3)
	for y := 0; y < th; y++ {
		clear(acc)
		s := int(vy.start[y]) - rowLo
		ws := vy.w[y*vy.n : y*vy.n+int(vy.count[y])]
		for k, wk := range ws {
			row := tmp[(s+k)*tw*3 : (s+k+1)*tw*3]
			row = row[:len(acc)]
			for i, v := range row {
				acc[i] += wk * v
			}
		}
		r := dst[y*W : (y+1)*W]
		g := dst[plane+y*W : plane+(y+1)*W]
		b := dst[2*plane+y*W : 2*plane+(y+1)*W]
		for x := 0; x < tw; x++ {
			r[x] = acc[3*x]*a[0] + c[0]
			g[x] = acc[3*x+1]*a[1] + c[1]
			b[x] = acc[3*x+2]*a[2] + c[2]
		}
		clear(r[tw:])
		clear(g[tw:])
		clear(b[tw:])
	}
	for ch := 0; ch < 3; ch++ {
		clear(dst[ch*plane+th*W : (ch+1)*plane])
	}
}

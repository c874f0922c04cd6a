package model

import "math"

// The 2-D sine positions of DETR (normalised, temperature 10000, scale 2π),
// computed on the host: they depend only on the padding mask, which the
// batch already holds in host memory, so no device op and no sync is spent
// on them. One tensor upload per step carries them.

// positionTemperature is the base of the sine wavelengths (Transformer, DETR).
const positionTemperature = 10000.0

// featureMask downsamples a pixel padding mask [B,H,W] to the feature map
// [B,h,w] with nearest-neighbour sampling, as torch.nn.functional.interpolate
// (mode "nearest") does: source index floor(i·H/h).
func featureMask(pix []bool, b, ph, pw, h, w int) []bool { // [B,h,w]
	out := make([]bool, b*h*w)
	sy, sx := float32(ph)/float32(h), float32(pw)/float32(w)
	for n := 0; n < b; n++ {
		for y := 0; y < h; y++ {
			iy := min(int(math.Floor(float64(float32(y)*sy))), ph-1)
			for x := 0; x < w; x++ {
				ix := min(int(math.Floor(float64(float32(x)*sx))), pw-1)
				out[(n*h+y)*w+x] = pix[(n*ph+iy)*pw+ix]
			}
		}
	}
	return out
}

// sinePositions returns the position of every feature cell, [B, h·w, d]
// row-major (y outer): the first d/2 channels encode y, the last d/2 x;
// within each half, channel pairs (2i, 2i+1) hold sin and cos of the
// normalised coordinate over 10000^(2i/(d/2)). Coordinates count un-padded
// cells (1-based) and are divided by the image's un-padded extent, so every
// image spans [0, 2π] whatever its padding.
func sinePositions(mask []bool, b, h, w, d int) []float32 { // [B,h*w,d]
	npf := d / 2
	const eps, scale = 1e-6, 2 * math.Pi
	invDim := make([]float64, npf)
	for i := range invDim {
		invDim[i] = 1 / math.Pow(positionTemperature, float64(2*(i/2))/float64(npf))
	}
	out := make([]float32, b*h*w*d)
	ye := make([]float64, h*w)
	xe := make([]float64, h*w)
	for n := 0; n < b; n++ {
		m := mask[n*h*w : (n+1)*h*w]
		// Cumulative counts of un-padded cells down the columns and along the rows.
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				v := 0.0
				if !m[y*w+x] {
					v = 1
				}
				ye[y*w+x], xe[y*w+x] = v, v
				if y > 0 {
					ye[y*w+x] += ye[(y-1)*w+x]
				}
				if x > 0 {
					xe[y*w+x] += xe[y*w+x-1]
				}
			}
		}
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				yn := ye[y*w+x] / (ye[(h-1)*w+x] + eps) * scale
				xn := xe[y*w+x] / (xe[y*w+w-1] + eps) * scale
				row := out[((n*h+y)*w+x)*d:]
				for i := 0; i < npf; i++ {
					ay, ax := yn*invDim[i], xn*invDim[i]
					if i%2 == 0 {
						row[i], row[npf+i] = float32(math.Sin(ay)), float32(math.Sin(ax))
					} else {
						row[i], row[npf+i] = float32(math.Cos(ay)), float32(math.Cos(ax))
					}
				}
			}
		}
	}
	return out
}

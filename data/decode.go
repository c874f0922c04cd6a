package data

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
)

// ErrCorruptImage: an image could not be decoded. The pipeline skips the
// image's rows and counts them; it never stops on one bad image.
var ErrCorruptImage = errors.New("data: corrupt image")

// RGB is a decoded 8-bit image, pixels interleaved R,G,B row by row.
type RGB struct {
	W, H int
	Pix  []uint8 // [H,W,3]
}

// TargetFunc gives the size an image of w×h pixels will be resized to; a
// Decoder uses it to decode no more pixels than needed.
type TargetFunc func(w, h int) (tw, th int)

// Decoder turns JPEG bytes into pixels. A decoder may return an image smaller
// than the source (DCT-domain scaling) but never smaller than target(w, h) in
// either dimension; the caller resizes what it gets to the target. Decoders
// must be safe for concurrent use.
type Decoder interface {
	Decode(src []byte, target TargetFunc) (*RGB, error)
	Name() string
}

// GoDecoder decodes with the standard library's image/jpeg at full size. It
// needs no native library and is the fallback of every other decoder.
type GoDecoder struct{}

var _ Decoder = GoDecoder{}

// Name implements Decoder.
func (GoDecoder) Name() string { return "image/jpeg" }

// Decode implements Decoder; target is not used (image/jpeg cannot scale).
func (GoDecoder) Decode(src []byte, _ TargetFunc) (*RGB, error) {
	img, err := jpeg.Decode(bytes.NewReader(src))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorruptImage, err)
	}
	return ToRGB(img), nil
}

// ToRGB converts any image to RGB, with fast paths for the types image/jpeg
// returns (YCbCr and Gray) and for RGBA.
func ToRGB(img image.Image) *RGB {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	out := &RGB{W: w, H: h, Pix: getBytes(w * h * 3)}
	switch m := img.(type) {
	case *image.YCbCr:
		ycbcrToRGB(m, out)
	case *image.Gray:
		for y := 0; y < h; y++ {
			row := m.Pix[(y)*m.Stride : (y)*m.Stride+w]
			o := out.Pix[y*w*3 : (y+1)*w*3]
			for x, v := range row {
				o[3*x], o[3*x+1], o[3*x+2] = v, v, v
			}
		}
	case *image.RGBA:
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride : y*m.Stride+4*w]
			o := out.Pix[y*w*3 : (y+1)*w*3]
			for x := 0; x < w; x++ {
				o[3*x], o[3*x+1], o[3*x+2] = row[4*x], row[4*x+1], row[4*x+2]
			}
		}
	default:
		i := 0
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				c := color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)
				out.Pix[i], out.Pix[i+1], out.Pix[i+2] = c.R, c.G, c.B
				i += 3
			}
		}
	}
	return out
}

// ycbcrToRGB converts with the JFIF equations in 16.16 fixed point, the same
// arithmetic as image/color.YCbCrToRGB, without a call per pixel.
func ycbcrToRGB(m *image.YCbCr, out *RGB) {
	b := m.Rect
	w := out.W
	// Horizontal and vertical chroma subsampling shifts.
	var hs, vs int
	switch m.SubsampleRatio {
	case image.YCbCrSubsampleRatio422:
		hs = 1
	case image.YCbCrSubsampleRatio420:
		hs, vs = 1, 1
	case image.YCbCrSubsampleRatio440:
		vs = 1
	case image.YCbCrSubsampleRatio411:
		hs = 2
	case image.YCbCrSubsampleRatio410:
		hs, vs = 2, 1
	}
	// Chroma coordinates are relative to the rectangle's origin rounded
	// down, as image.YCbCr.COffset computes them.
	cx0, cy0 := b.Min.X>>hs, b.Min.Y>>vs
	for y := 0; y < out.H; y++ {
		o := out.Pix[y*w*3 : (y+1)*w*3]
		yrow := m.Y[m.YOffset(b.Min.X, b.Min.Y+y):]
		yrow = yrow[:w]
		crow := ((b.Min.Y+y)>>vs - cy0) * m.CStride
		cbRow, crRow := m.Cb[crow:], m.Cr[crow:]
		for x, yv := range yrow {
			ci := (b.Min.X+x)>>hs - cx0
			yy := int32(yv) * 0x10101
			cb := int32(cbRow[ci]) - 128
			cr := int32(crRow[ci]) - 128
			q := o[3*x : 3*x+3 : 3*x+3]
			q[0] = clamp16(yy + 91881*cr)
			q[1] = clamp16(yy - 22554*cb - 46802*cr)
			q[2] = clamp16(yy + 116130*cb)
		}
	}
}

func clamp16(v int32) uint8 {
	if uint32(v)&0xff000000 == 0 {
		return uint8(v >> 16)
	}
	if v < 0 {
		return 0
	}
	return 255
}

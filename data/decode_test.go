package data

import (
	"errors"
	"image"
	"image/color"
	"math"
	"testing"

	"github.com/e2evlp/vlp/synth"
)

func testJPEG(t *testing.T, w, h int) []byte {
	t.Helper()
	p := synth.Scene(synth.Config{Seed: 4, Images: 1, Width: w, Height: h, Texture: 20}, 0)
	b, err := synth.EncodeJPEG(p.Image)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func loadTurbo(t *testing.T) *TurboDecoder {
	t.Helper()
	d, err := LoadTurboDecoder("")
	if err != nil {
		t.Fatalf("%v (install Debian's libturbojpeg0, as `make deps` does)", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func meanAbsDiff(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += math.Abs(float64(a[i] - b[i]))
	}
	return s / float64(len(a))
}

func TestDecodersAgree(t *testing.T) {
	src := testJPEG(t, 320, 240)
	turbo := loadTurbo(t)
	cases := []struct {
		name   string
		ic     ImageConfig
		wantWH [2]int // size the turbo decoder returns
	}{
		{"no scaling (target > half)", ImageConfig{ShorterSide: 200, MaxSide: 400, PadMultiple: 1}, [2]int{320, 240}},
		{"scale 1/2", ImageConfig{ShorterSide: 120, MaxSide: 400, PadMultiple: 1}, [2]int{160, 120}},
		{"scale 1/4", SquareImageConfig(56), [2]int{80, 60}},
		{"scale 1/8", SquareImageConfig(24), [2]int{40, 30}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tw, th := tc.ic.TargetSize(320, 240)
			g, err := GoDecoder{}.Decode(src, tc.ic.TargetSize)
			if err != nil {
				t.Fatal(err)
			}
			u, err := turbo.Decode(src, tc.ic.TargetSize)
			if err != nil {
				t.Fatal(err)
			}
			if u.W != tc.wantWH[0] || u.H != tc.wantWH[1] {
				t.Fatalf("turbo decoded %dx%d, want %dx%d", u.W, u.H, tc.wantWH[0], tc.wantWH[1])
			}
			a, b := ResizeNormalize(g, tw, th), ResizeNormalize(u, tw, th)
			// Different IDCTs and chroma upsampling: close, not identical.
			// 0.06 in normalised units is about 3.5 grey levels (of 255).
			d := meanAbsDiff(a.Pix, b.Pix)
			t.Logf("mean |go - turbo| = %.4f", d)
			if d > 0.06 {
				t.Fatalf("mean |go - turbo| = %.4f after resize, want ≤ 0.06", d)
			}
		})
	}
}

func TestCorruptJPEG(t *testing.T) {
	src := testJPEG(t, 64, 48)
	decoders := []Decoder{GoDecoder{}, loadTurbo(t)}
	for _, d := range decoders {
		for name, bad := range map[string][]byte{
			"truncated": src[:len(src)/2],
			"garbage":   []byte("this is not a jpeg at all"),
			"empty":     {},
		} {
			if _, err := d.Decode(bad, nil); !errors.Is(err, ErrCorruptImage) {
				t.Errorf("%s %s: err = %v, want ErrCorruptImage", d.Name(), name, err)
			}
		}
	}
}

func TestTurboFallback(t *testing.T) {
	t.Setenv("VLP_TURBOJPEG_LIB", "/nonexistent/libturbojpeg.so.0")
	if _, err := LoadTurboDecoder(""); !errors.Is(err, ErrNoTurboJPEG) {
		t.Fatalf("err = %v, want ErrNoTurboJPEG", err)
	}
	if d := NewDecoder(); d.Name() != (GoDecoder{}).Name() {
		t.Fatalf("NewDecoder without the library = %s, want image/jpeg", d.Name())
	}
}

func TestYCbCrToRGBMatchesStdlib(t *testing.T) {
	ratios := []image.YCbCrSubsampleRatio{
		image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422, image.YCbCrSubsampleRatio420,
		image.YCbCrSubsampleRatio440, image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410,
	}
	for _, ratio := range ratios {
		full := image.NewYCbCr(image.Rect(0, 0, 37, 23), ratio)
		for i := range full.Y {
			full.Y[i] = uint8(mix64(uint64(i)) >> 56)
		}
		for i := range full.Cb {
			full.Cb[i] = uint8(mix64(uint64(i)+1e6) >> 56)
			full.Cr[i] = uint8(mix64(uint64(i)+2e6) >> 56)
		}
		for _, img := range []*image.YCbCr{full, full.SubImage(image.Rect(3, 5, 30, 20)).(*image.YCbCr)} {
			got := ToRGB(img)
			b := img.Bounds()
			for y := b.Min.Y; y < b.Max.Y; y++ {
				for x := b.Min.X; x < b.Max.X; x++ {
					c := img.YCbCrAt(x, y)
					r, g, bl := color.YCbCrToRGB(c.Y, c.Cb, c.Cr)
					i := ((y-b.Min.Y)*got.W + (x - b.Min.X)) * 3
					if got.Pix[i] != r || got.Pix[i+1] != g || got.Pix[i+2] != bl {
						t.Fatalf("%v %v (%d,%d): got %v, want %d %d %d", ratio, b, x, y, got.Pix[i:i+3], r, g, bl)
					}
				}
			}
		}
	}
}

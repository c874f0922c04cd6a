package data

import (
	"image"
	"image/color"
	"math"
	"testing"

	"github.com/e2evlp/vlp/sharding"
)

func TestTargetSize(t *testing.T) {
	cases := []struct {
		name   string
		cfg    ImageConfig
		w, h   int
		tw, th int
	}{
		{"landscape to shorter 512", DefaultImageConfig(), 640, 480, 683, 512},
		{"portrait to shorter 512", DefaultImageConfig(), 480, 640, 512, 683},
		{"wide capped by max side", DefaultImageConfig(), 1000, 300, 853, 256},
		{"upscale small", DefaultImageConfig(), 96, 96, 512, 512},
		{"384 max 640", ImageConfig{ShorterSide: 384, MaxSide: 640}, 640, 427, 576, 384},
		{"square ignores aspect", SquareImageConfig(384), 640, 427, 384, 384},
	}
	for _, tc := range cases {
		tw, th := tc.cfg.TargetSize(tc.w, tc.h)
		if tw != tc.tw || th != tc.th {
			t.Errorf("%s: TargetSize(%d,%d) = %dx%d, want %dx%d", tc.name, tc.w, tc.h, tw, th, tc.tw, tc.th)
		}
	}
}

func TestImageConfigValidate(t *testing.T) {
	bad := []ImageConfig{
		{ShorterSide: 0, MaxSide: 10, PadMultiple: 1},
		{ShorterSide: 20, MaxSide: 10, PadMultiple: 1},
		{Square: -1, PadMultiple: 1},
		{Square: 32, PadMultiple: 0},
	}
	for _, c := range bad {
		if c.Validate() == nil {
			t.Errorf("%+v: Validate passed", c)
		}
	}
	for _, c := range []ImageConfig{DefaultImageConfig(), SquareImageConfig(384)} {
		if err := c.Validate(); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
}

func solid(w, h int, c [3]uint8) *RGB {
	img := &RGB{W: w, H: h, Pix: make([]uint8, w*h*3)}
	for i := 0; i < w*h; i++ {
		copy(img.Pix[3*i:], c[:])
	}
	return img
}

func TestNormalisationValues(t *testing.T) {
	cases := []struct {
		name string
		rgb  [3]uint8
		want [3]float64
	}{
		{"white", [3]uint8{255, 255, 255}, [3]float64{(1 - 0.485) / 0.229, (1 - 0.456) / 0.224, (1 - 0.406) / 0.225}},
		{"black", [3]uint8{0, 0, 0}, [3]float64{-0.485 / 0.229, -0.456 / 0.224, -0.406 / 0.225}},
		{"mid", [3]uint8{128, 64, 32}, [3]float64{(128/255.0 - 0.485) / 0.229, (64/255.0 - 0.456) / 0.224, (32/255.0 - 0.406) / 0.225}},
	}
	for _, tc := range cases {
		for _, size := range [][4]int{{50, 40, 50, 40}, {50, 40, 23, 17}, {20, 10, 61, 33}} {
			out := ResizeNormalize(solid(size[0], size[1], tc.rgb), size[2], size[3])
			plane := out.W * out.H
			for c := 0; c < 3; c++ {
				for _, v := range out.Pix[c*plane : (c+1)*plane] {
					if math.Abs(float64(v)-tc.want[c]) > 1e-4 {
						t.Fatalf("%s %v: channel %d = %v, want %v", tc.name, size, c, v, tc.want[c])
					}
				}
			}
		}
	}
}

func TestResizeGradientIsLinear(t *testing.T) {
	// A horizontal ramp resized (up or down) stays a ramp: the filter is
	// linear and its weights sum to one; pixel centres are at i+0.5.
	for _, tw := range []int{40, 100, 333} {
		w, h := 200, 4
		src := &RGB{W: w, H: h, Pix: make([]uint8, w*h*3)}
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				v := uint8(x) // 0..199
				src.Pix[(y*w+x)*3], src.Pix[(y*w+x)*3+1], src.Pix[(y*w+x)*3+2] = v, v, v
			}
		}
		out := ResizeNormalize(src, tw, 2)
		scale := float64(w) / float64(tw)
		// Away from the borders (where the filter is clipped), the value at
		// output x is the input value at its centre: (x+0.5)*scale-0.5.
		margin := int(math.Ceil(2*math.Max(scale, 1))) + 1
		for x := margin; x < tw-margin; x++ {
			want := (float64(x)+0.5)*scale - 0.5
			got := (float64(out.Pix[x])*0.229 + 0.485) * 255
			if math.Abs(got-want) > 1e-2 {
				t.Fatalf("tw=%d x=%d: %v, want %v", tw, x, got, want)
			}
		}
	}
}

func TestBoxesFollowResize(t *testing.T) {
	// A red rectangle at a known normalised box stays at that box after a
	// resize to another aspect ratio and after padding into a batch.
	w, h := 120, 80
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = 255
	}
	x0, y0, x1, y1 := 30, 20, 90, 50
	for y := y0; y < y1; y++ {
		for x := x0; x < x1; x++ {
			img.Set(x, y, color.RGBA{255, 0, 0, 255})
		}
	}
	for _, ic := range []ImageConfig{{ShorterSide: 40, MaxSide: 100, PadMultiple: 1}, SquareImageConfig(64), {ShorterSide: 160, MaxSide: 400, PadMultiple: 32}} {
		tw, th := ic.TargetSize(w, h)
		out := ResizeNormalize(ToRGB(img), tw, th)
		green := out.Pix[out.W*out.H : 2*out.W*out.H]
		isRed := func(x, y int) bool { return green[y*out.W+x] < -1.5 } // G=0 normalises to -2.04, G=255 to 2.43
		// Box in output pixels from the normalised box.
		bx0, by0 := float64(x0)/float64(w)*float64(out.W), float64(y0)/float64(h)*float64(out.H)
		bx1, by1 := float64(x1)/float64(w)*float64(out.W), float64(y1)/float64(h)*float64(out.H)
		for y := 0; y < out.H; y++ {
			for x := 0; x < out.W; x++ {
				cx, cy := float64(x)+0.5, float64(y)+0.5
				inside := cx > bx0+1.5 && cx < bx1-1.5 && cy > by0+1.5 && cy < by1-1.5
				outside := cx < bx0-1.5 || cx > bx1+1.5 || cy < by0-1.5 || cy > by1+1.5
				if inside && !isRed(x, y) {
					t.Fatalf("%+v: pixel (%d,%d) inside the box is not red", ic, x, y)
				}
				if outside && isRed(x, y) {
					t.Fatalf("%+v: pixel (%d,%d) outside the box is red", ic, x, y)
				}
			}
		}
	}
}

func TestPaddingMasks(t *testing.T) {
	mk := func(id uint64, w, h int, c color.RGBA) Example {
		img := image.NewRGBA(image.Rect(0, 0, w, h))
		for i := 0; i < w*h; i++ {
			img.Pix[4*i], img.Pix[4*i+1], img.Pix[4*i+2], img.Pix[4*i+3] = c.R, c.G, c.B, 255
		}
		meta := &sharding.SampleMeta{Key: "k" + itoa(int(id)), ImageID: id, Width: w, Height: h,
			Texts: []sharding.Text{{PairID: id, Text: "red"}}}
		return Example{Meta: meta, Image: img}
	}
	cfg := DefaultConfig()
	cfg.Image = ImageConfig{ShorterSide: 20, MaxSide: 40, PadMultiple: 8}
	cfg.ITMNegProb, cfg.MLMProb = 0, 0
	ex := []Example{mk(1, 60, 40, color.RGBA{255, 0, 0, 255}), mk(2, 40, 60, color.RGBA{0, 0, 255, 255}), mk(3, 30, 30, color.RGBA{0, 255, 0, 255})}
	v, err := NewVocab(append(append([]string(nil), SpecialTokens...), "red"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := BuildBatch(cfg, NewTokenizer(v), ex)
	if err != nil {
		t.Fatal(err)
	}
	// Targets: 30x20, 20x30, 20x20 → padded to 30x30, rounded up to 32x32.
	if b.Height != 32 || b.Width != 32 {
		t.Fatalf("batch %dx%d, want 32x32", b.Width, b.Height)
	}
	sizes := [][2]int{{30, 20}, {20, 30}, {20, 20}}
	want := [][3]float32{}
	for _, c := range [][3]float64{{255, 0, 0}, {0, 0, 255}, {0, 255, 0}} {
		var n [3]float32
		for k := range n {
			n[k] = float32((c[k]/255 - float64(ImageNetMean[k])) / float64(ImageNetStd[k]))
		}
		want = append(want, n)
	}
	H, W := b.Height, b.Width
	for i, sz := range sizes {
		for y := 0; y < H; y++ {
			for x := 0; x < W; x++ {
				pad := x >= sz[0] || y >= sz[1]
				if b.PixelMask[(i*H+y)*W+x] != pad {
					t.Fatalf("row %d (%d,%d): mask %v, want %v", i, x, y, !pad, pad)
				}
				for c := 0; c < 3; c++ {
					got := b.Images[((i*3+c)*H+y)*W+x]
					exp := want[i][c]
					if pad {
						exp = 0
					}
					if math.Abs(float64(got-exp)) > 1e-4 {
						t.Fatalf("row %d (%d,%d) channel %d = %v, want %v", i, x, y, c, got, exp)
					}
				}
			}
		}
	}
}

package plot

import (
	"errors"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func falling(n int, scale float64) (x, y []float64) {
	for i := 1; i <= n; i++ {
		x, y = append(x, float64(i)), append(y, scale/float64(i))
	}
	return x, y
}

func TestValidate(t *testing.T) {
	x, y := falling(10, 3)
	ok := Series{Name: "total", X: x, Y: y}
	tests := []struct {
		name string
		c    LineChart
		ok   bool
	}{
		{"fine", LineChart{Title: "t", XLabel: "step", YLabel: "loss", Series: []Series{ok}}, true},
		{"no title", LineChart{XLabel: "step", YLabel: "loss", Series: []Series{ok}}, false},
		{"no unit label", LineChart{Title: "t", XLabel: "step", Series: []Series{ok}}, false},
		{"no series", LineChart{Title: "t", XLabel: "step", YLabel: "loss"}, false},
		{"unnamed series", LineChart{Title: "t", XLabel: "step", YLabel: "loss", Series: []Series{{X: x, Y: y}}}, false},
		{"ragged", LineChart{Title: "t", XLabel: "step", YLabel: "loss", Series: []Series{{Name: "a", X: x, Y: y[:3]}}}, false},
		{"nothing positive on log y", LineChart{Title: "t", XLabel: "step", YLabel: "loss", LogY: true,
			Series: []Series{{Name: "a", X: []float64{1, 2}, Y: []float64{0, -1}}}}, false},
		{"zeros on linear y", LineChart{Title: "t", XLabel: "step", YLabel: "loss",
			Series: []Series{{Name: "a", X: []float64{1, 2}, Y: []float64{0, 0}}}}, true},
		{"too many series", LineChart{Title: "t", XLabel: "step", YLabel: "loss", Series: make([]Series, len(Palette)+1)}, false},
		{"too small", LineChart{Title: "t", XLabel: "step", YLabel: "loss", Series: []Series{ok}, Width: 50}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.Validate()
			if tc.ok && err != nil {
				t.Fatal(err)
			}
			if !tc.ok && !errors.Is(err, ErrChart) {
				t.Fatalf("err = %v, want ErrChart", err)
			}
		})
	}
}

func TestSegmentsBreakAtUndrawablePoints(t *testing.T) {
	c := LineChart{LogY: true}
	s := Series{X: []float64{1, 2, 3, 4, 5, 6}, Y: []float64{1, 2, 0, math.NaN(), 5, math.Inf(1)}}
	segs := c.segments(s)
	if len(segs) != 2 || len(segs[0]) != 2 || len(segs[1]) != 1 || segs[1][0].Y != 5 {
		t.Fatalf("segments = %v, want [(1,1) (2,2)] [(5,5)]", segs)
	}
}

func TestLogTicks(t *testing.T) {
	labels := func(lo, hi float64) []string {
		var l []string
		for _, tk := range (logTicks{}).Ticks(lo, hi) {
			if tk.Label != "" {
				l = append(l, tk.Label)
			}
		}
		return l
	}
	if got, want := labels(0.01, 100), []string{"0.01", "0.1", "1", "10", "100"}; !reflect.DeepEqual(got, want) {
		t.Errorf("0.01–100: labels %v, want %v", got, want)
	}
	if got, want := labels(1, 10), []string{"1", "2", "5", "10"}; !reflect.DeepEqual(got, want) {
		t.Errorf("1–10: labels %v, want %v", got, want)
	}
	if got, want := labels(100, 1e7), []string{"100", "1000", "10000", "100000", "1e+06", "1e+07"}; !reflect.DeepEqual(got, want) {
		t.Errorf("100–1e7: labels %v, want %v", got, want)
	}
	if lo, hi := decades(0.3, 0.7); lo != 0.1 || hi != 1 {
		t.Errorf("decades(0.3, 0.7) = %g, %g, want 0.1, 1", lo, hi)
	}
	if lo, hi := decades(1, 1); lo != 1 || hi != 10 {
		t.Errorf("decades(1, 1) = %g, %g, want 1, 10", lo, hi)
	}
}

// near counts the pixels of img within tol (per 8-bit channel) of c.
func near(img image.Image, r, g, b uint8, tol int) int {
	n := 0
	bd := img.Bounds()
	for y := bd.Min.Y; y < bd.Max.Y; y++ {
		for x := bd.Min.X; x < bd.Max.X; x++ {
			pr, pg, pb, _ := img.At(x, y).RGBA()
			d := func(v uint32, w uint8) int { return abs(int(v>>8) - int(w)) }
			if d(pr, r) <= tol && d(pg, g) <= tol && d(pb, b) <= tol {
				n++
			}
		}
	}
	return n
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func TestWritePNG(t *testing.T) {
	x, y := falling(200, 30)
	_, y2 := falling(200, 4)
	_, y3 := falling(200, 0.5)
	c := LineChart{Title: "run-1: losses", XLabel: "step", YLabel: "loss (nats)", LogY: true, Width: 640, Height: 400,
		Series: []Series{{Name: "total", X: x, Y: y, Thick: true}, {Name: "mlm", X: x, Y: y2}, {Name: "ref", X: x[:20], Y: y3[:20], Dashed: true, Points: true}}}
	path := filepath.Join(t.TempDir(), "c.png")
	if err := c.WritePNG(path); err != nil {
		t.Fatal(err)
	}
	if out := os.Getenv("VLP_PLOT_OUT"); out != "" {
		// Keep the picture to look at.
		b, _ := os.ReadFile(path)
		if err := os.WriteFile(out, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	img := decodePNG(t, path)
	if b := img.Bounds(); b.Dx() != 640 || b.Dy() != 400 {
		t.Fatalf("PNG is %v, want 640×400", b)
	}
	// Each series' colour is on the image (lines and legend), and text was
	// drawn: the title's band at the top holds dark pixels.
	for i := range c.Series {
		p := Palette[i]
		if n := near(img, p.R, p.G, p.B, 40); n < 50 {
			t.Errorf("series %q: %d pixels of its colour, want ≥ 50", c.Series[i].Name, n)
		}
	}
	title := img.(interface {
		SubImage(image.Rectangle) image.Image
	}).SubImage(image.Rect(0, 0, 640, 25))
	if n := near(title, 0, 0, 0, 80); n < 20 {
		t.Errorf("title band: %d dark pixels, want text", n)
	}
}

func TestWritePanelsPNG(t *testing.T) {
	x, y := falling(20, 30)
	top := LineChart{Title: "latency", XLabel: "size (px)", YLabel: "ms", LogY: true, Width: 640, Height: 300,
		Series: []Series{{Name: "e2e", X: x, Y: y, Thick: true}}}
	bottom := LineChart{Title: "accuracy", XLabel: "size (px)", YLabel: "rate (0–1)", Width: 640, Height: 200,
		Series: []Series{{Name: "a", X: x, Y: y}, {Name: "b", X: x, Y: y, Dashed: true}}}
	path := filepath.Join(t.TempDir(), "p.png")
	if err := WritePanelsPNG(path, top, bottom); err != nil {
		t.Fatal(err)
	}
	img := decodePNG(t, path)
	if b := img.Bounds(); b.Dx() != 640 || b.Dy() != 500 {
		t.Fatalf("PNG is %v, want 640×500 (the panels stacked)", b)
	}
	sub := func(r image.Rectangle) image.Image {
		return img.(interface {
			SubImage(image.Rectangle) image.Image
		}).SubImage(r)
	}
	// Each panel has its title at its top; the second series' colour (red)
	// is drawn only in the bottom panel.
	for _, band := range []image.Rectangle{image.Rect(0, 0, 640, 25), image.Rect(0, 300, 640, 325)} {
		if n := near(sub(band), 0, 0, 0, 80); n < 20 {
			t.Errorf("title band %v: %d dark pixels, want text", band, n)
		}
	}
	red := Palette[1]
	if n := near(sub(image.Rect(0, 0, 640, 300)), red.R, red.G, red.B, 40); n != 0 {
		t.Errorf("top panel: %d pixels of the bottom panel's colour", n)
	}
	if n := near(sub(image.Rect(0, 300, 640, 500)), red.R, red.G, red.B, 40); n < 50 {
		t.Errorf("bottom panel: %d pixels of its second series' colour, want ≥ 50", n)
	}
	if err := WritePanelsPNG(path); !errors.Is(err, ErrChart) {
		t.Errorf("no chart: %v, want ErrChart", err)
	}
	if err := WritePanelsPNG(path, top, LineChart{}); !errors.Is(err, ErrChart) {
		t.Errorf("an invalid panel: %v, want ErrChart", err)
	}
}

// decodePNG reads the PNG at path.
func decodePNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

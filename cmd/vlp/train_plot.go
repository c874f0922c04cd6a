package main

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"
	"sort"
	"strings"
)

// lossPoint is one committed step's global mean losses.
type lossPoint struct {
	Step   uint64
	Losses map[string]float64
}

// curveColours are the line colours of the loss curves, "total" first.
var curveColours = []struct {
	name string
	c    color.RGBA
}{
	{"black", color.RGBA{0, 0, 0, 255}}, {"red", color.RGBA{220, 30, 30, 255}}, {"blue", color.RGBA{30, 60, 220, 255}},
	{"green", color.RGBA{0, 150, 0, 255}}, {"orange", color.RGBA{240, 140, 0, 255}}, {"purple", color.RGBA{140, 40, 180, 255}},
	{"cyan", color.RGBA{0, 170, 200, 255}}, {"brown", color.RGBA{130, 80, 30, 255}}, {"magenta", color.RGBA{230, 0, 200, 255}},
	{"grey", color.RGBA{120, 120, 120, 255}},
}

// curveNames orders the losses to plot: total first, then by name; the
// auxiliary (per decoder layer) losses are left out.
func curveNames(points []lossPoint) []string {
	set := map[string]bool{}
	for _, p := range points {
		for k := range p.Losses {
			if !auxLoss.MatchString(k) {
				set[k] = true
			}
		}
	}
	var names []string
	for k := range set {
		if k != "total" {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	if set["total"] {
		names = append([]string{"total"}, names...)
	}
	if len(names) > len(curveColours) {
		names = names[:len(curveColours)]
	}
	return names
}

// plotLosses draws every loss against the step on a log scale (one line per
// loss, the total thicker; faint lines at each power of ten) and writes it
// as a PNG. It returns the legend: which colour is which loss, and the
// y range.
func plotLosses(path string, points []lossPoint) (string, error) {
	if len(points) < 2 {
		return "", fmt.Errorf("loss curve: %d recorded steps, want at least 2", len(points))
	}
	sort.Slice(points, func(i, j int) bool { return points[i].Step < points[j].Step })
	names := curveNames(points)
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, p := range points {
		for _, k := range names {
			if v, ok := p.Losses[k]; ok && v > 0 && !math.IsInf(v, 0) && !math.IsNaN(v) {
				lo, hi = min(lo, v), max(hi, v)
			}
		}
	}
	if math.IsInf(lo, 1) {
		return "", fmt.Errorf("loss curve: no positive loss values")
	}
	ylo, yhi := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if yhi <= ylo {
		yhi = ylo + 1
	}
	const W, H, margin = 900, 450, 30
	img := image.NewRGBA(image.Rect(0, 0, W, H))
	draw.Draw(img, img.Bounds(), image.NewUniform(color.RGBA{255, 255, 255, 255}), image.Point{}, draw.Src)
	s0, s1 := float64(points[0].Step), float64(points[len(points)-1].Step)
	if s1 <= s0 {
		s1 = s0 + 1
	}
	px := func(step uint64) int { return margin + int((float64(step)-s0)/(s1-s0)*float64(W-2*margin)) }
	py := func(v float64) int {
		return H - margin - int((math.Log10(v)-ylo)/(yhi-ylo)*float64(H-2*margin))
	}
	grey := color.RGBA{225, 225, 225, 255}
	for d := ylo; d <= yhi; d++ {
		y := py(math.Pow(10, d))
		drawLine(img, margin, y, W-margin, y, grey, 1)
	}
	axis := color.RGBA{60, 60, 60, 255}
	drawLine(img, margin, H-margin, W-margin, H-margin, axis, 1)
	drawLine(img, margin, margin, margin, H-margin, axis, 1)
	var legend []string
	for i, k := range names {
		c := curveColours[i]
		width := 1
		if k == "total" {
			width = 2
		}
		havePrev := false
		var x0, y0 int
		for _, p := range points {
			v, ok := p.Losses[k]
			if !ok || v <= 0 || math.IsInf(v, 0) || math.IsNaN(v) {
				havePrev = false
				continue
			}
			x, y := px(p.Step), py(v)
			if havePrev {
				drawLine(img, x0, y0, x, y, c.c, width)
			}
			x0, y0, havePrev = x, y, true
		}
		legend = append(legend, k+"="+c.name)
	}
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s (steps %d–%d, log scale 1e%d–1e%d, faint lines at powers of ten)",
		strings.Join(legend, ", "), points[0].Step, points[len(points)-1].Step, int(ylo), int(yhi)), nil
}

// drawLine draws a line of the given width (Bresenham, a square pen).
func drawLine(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA, width int) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := 1, 1
	if x0 > x1 {
		sx = -1
	}
	if y0 > y1 {
		sy = -1
	}
	e := dx + dy
	for {
		for a := 0; a < width; a++ {
			for b := 0; b < width; b++ {
				if p := (image.Point{X: x0 + a, Y: y0 + b}); p.In(img.Bounds()) {
					img.SetRGBA(p.X, p.Y, c)
				}
			}
		}
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			x0 += sx
		}
		if e2 <= dx {
			e += dx
			y0 += sy
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

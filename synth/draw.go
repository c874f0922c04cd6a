package synth

import (
	"image"
	"image/color"
	"math"
)

// inside reports whether (u, v) in [-1, 1]^2 (v grows downwards) is inside
// the shape class.
func inside(class string, u, v float64) bool {
	switch class {
	case "circle":
		return float64(u*u)+float64(v*v) <= 1 // explicit conversions: no FMA, same bits on every CPU
	case "square":
		return u >= -1 && u <= 1 && v >= -1 && v <= 1
	case "triangle": // apex up, base along the bottom
		return v <= 1 && math.Abs(u) <= (v+1)/2
	case "diamond":
		return math.Abs(u)+math.Abs(v) <= 1
	case "cross":
		return math.Abs(u) <= 0.34 || math.Abs(v) <= 0.34
	case "star":
		return inPolygon(starPoly, u, v)
	}
	return false
}

// starPoly is a five-pointed star with its top point at (0, -1).
var starPoly = func() [][2]float64 {
	var p [][2]float64
	for k := 0; k < 10; k++ {
		r := 1.0
		if k%2 == 1 {
			r = 0.45
		}
		a := -math.Pi/2 + float64(k)*math.Pi/5
		p = append(p, [2]float64{r * math.Cos(a), r * math.Sin(a)})
	}
	return p
}()

// inPolygon is the even-odd crossing test.
func inPolygon(p [][2]float64, x, y float64) bool {
	in := false
	for i, j := 0, len(p)-1; i < len(p); j, i = i, i+1 {
		xi, yi, xj, yj := p[i][0], p[i][1], p[j][0], p[j][1]
		if (yi > y) != (yj > y) && x < (xj-xi)*(y-yi)/(yj-yi)+xi {
			in = !in
		}
	}
	return in
}

// drawShape paints class in colour c into the square cell with 4x4
// supersampling and returns the tight box of the pixels it covered at least
// half (Max exclusive).
func drawShape(img *image.RGBA, class string, c color.RGBA, cell image.Rectangle) image.Rectangle {
	const ss = 4
	side := float64(cell.Dx())
	box := image.Rectangle{Min: cell.Max, Max: cell.Min}
	for y := cell.Min.Y; y < cell.Max.Y; y++ {
		for x := cell.Min.X; x < cell.Max.X; x++ {
			hits := 0
			for sy := 0; sy < ss; sy++ {
				for sx := 0; sx < ss; sx++ {
					u := float64((float64(x-cell.Min.X)+(float64(sx)+0.5)/ss)/side*2) - 1
					v := float64((float64(y-cell.Min.Y)+(float64(sy)+0.5)/ss)/side*2) - 1
					if inside(class, u, v) {
						hits++
					}
				}
			}
			if hits == 0 {
				continue
			}
			a := float64(hits) / ss / ss
			blend(img, x, y, c, a)
			if a >= 0.5 {
				box.Min.X, box.Min.Y = min(box.Min.X, x), min(box.Min.Y, y)
				box.Max.X, box.Max.Y = max(box.Max.X, x+1), max(box.Max.Y, y+1)
			}
		}
	}
	return box
}

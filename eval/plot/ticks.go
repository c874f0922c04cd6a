package plot

import (
	"math"
	"strconv"

	gplot "gonum.org/v1/plot"
)

// decades widens [lo, hi] (both > 0) to whole powers of ten, at least one
// decade apart.
func decades(lo, hi float64) (float64, float64) {
	a, b := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if b <= a {
		b = a + 1
	}
	return math.Pow(10, a), math.Pow(10, b)
}

// logTicks marks a log axis: a labelled tick at every power of ten and
// minor ticks at 2..9 times it; when the axis spans at most two decades,
// 2× and 5× are labelled too, so a short axis still reads.
type logTicks struct{}

var _ gplot.Ticker = logTicks{}

// Ticks implements gplot.Ticker for min, max > 0 (decades made sure).
func (logTicks) Ticks(lo, hi float64) []gplot.Tick {
	a, b := int(math.Floor(math.Log10(lo))), int(math.Ceil(math.Log10(hi)))
	short := b-a <= 2
	var ticks []gplot.Tick
	for e := a; e <= b; e++ {
		base := math.Pow(10, float64(e))
		for m := 1; m <= 9; m++ {
			v := float64(m) * base
			if v < lo*(1-1e-9) || v > hi*(1+1e-9) {
				continue
			}
			t := gplot.Tick{Value: v}
			if m == 1 || (short && (m == 2 || m == 5)) {
				t.Label = tickLabel(v)
			}
			ticks = append(ticks, t)
		}
	}
	return ticks
}

// tickLabel writes v plainly ("0.01", "1000") between 0.001 and a million,
// in e-notation outside.
func tickLabel(v float64) string {
	if a := math.Abs(v); a >= 1e-3 && a < 1e6 {
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

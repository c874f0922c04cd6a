package plot

import (
	"errors"
	"fmt"
	"image/color"
	"math"
	"os"
	"strconv"

	gplot "gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// ErrChart is wrapped by every Validate failure.
var ErrChart = errors.New("plot: invalid chart")

// DPI is the resolution charts are drawn at: 96 dots per inch, so a
// LineChart's Width and Height are the PNG's size in pixels.
const DPI = 96

// Default sizes in pixels: wide enough for a few thousand steps, tall
// enough for four decades of log ticks.
const (
	DefaultWidth  = 900
	DefaultHeight = 500
)

// Palette is the colour of each series, in order: black first (the total
// of a loss curve), then colours told apart by most readers.
var Palette = []color.RGBA{
	{0, 0, 0, 255}, {220, 30, 30, 255}, {30, 60, 220, 255}, {0, 150, 0, 255}, {240, 140, 0, 255},
	{140, 40, 180, 255}, {0, 170, 200, 255}, {130, 80, 30, 255}, {230, 0, 200, 255}, {120, 120, 120, 255},
}

// Series is one line of a chart: the legend's name and its points.
type Series struct {
	Name   string
	X, Y   []float64
	Thick  bool // a 2 pt line instead of 1 pt: the series the reader should find first
	Dashed bool // a dashed line: a reference or a cost model, not a measurement
	Points bool // a marker on every point: for a few measured points
}

// LineChart is one chart; see the package doc.
type LineChart struct {
	Title          string
	XLabel, YLabel string // with units: "image size (px, shorter side)"
	LogY           bool
	XTicks         []float64 // the labelled x ticks (the measured sizes); nil: chosen by gonum/plot
	Series         []Series
	Width, Height  int // pixels; 0: DefaultWidth, DefaultHeight
}

// Validate names the first thing that cannot be drawn.
func (c LineChart) Validate() error {
	switch {
	case c.Title == "":
		return fmt.Errorf("%w: no title", ErrChart)
	case c.XLabel == "" || c.YLabel == "":
		return fmt.Errorf("%w: axis labels %q, %q: want both, with units", ErrChart, c.XLabel, c.YLabel)
	case len(c.Series) == 0:
		return fmt.Errorf("%w: no series", ErrChart)
	case len(c.Series) > len(Palette):
		return fmt.Errorf("%w: %d series, at most %d", ErrChart, len(c.Series), len(Palette))
	case c.Width < 0 || c.Height < 0 || (c.Width > 0 && c.Width < 200) || (c.Height > 0 && c.Height < 150):
		return fmt.Errorf("%w: size %d×%d px, want at least 200×150 (0: default)", ErrChart, c.Width, c.Height)
	}
	for _, s := range c.Series {
		if s.Name == "" {
			return fmt.Errorf("%w: a series has no name", ErrChart)
		}
		if len(s.X) != len(s.Y) {
			return fmt.Errorf("%w: series %q has %d x and %d y values", ErrChart, s.Name, len(s.X), len(s.Y))
		}
		if len(c.segments(s)) == 0 {
			return fmt.Errorf("%w: series %q has no point that can be drawn (log y: %v)", ErrChart, s.Name, c.LogY)
		}
	}
	return nil
}

// size is the chart's size in pixels.
func (c LineChart) size() (w, h int) {
	w, h = c.Width, c.Height
	if w == 0 {
		w = DefaultWidth
	}
	if h == 0 {
		h = DefaultHeight
	}
	return w, h
}

// drawable reports whether a point can be placed on the chart's axes.
func (c LineChart) drawable(x, y float64) bool {
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	return finite(x) && finite(y) && (!c.LogY || y > 0)
}

// segments splits a series into runs of drawable points: the line breaks
// where a point cannot be drawn.
func (c LineChart) segments(s Series) []plotter.XYs {
	var segs []plotter.XYs
	var cur plotter.XYs
	for i := range s.X {
		if !c.drawable(s.X[i], s.Y[i]) {
			if len(cur) > 0 {
				segs, cur = append(segs, cur), nil
			}
			continue
		}
		cur = append(cur, plotter.XY{X: s.X[i], Y: s.Y[i]})
	}
	if len(cur) > 0 {
		segs = append(segs, cur)
	}
	return segs
}

// build lays the chart out on a gonum plot.
func (c LineChart) build() (*gplot.Plot, gplot.Legend, error) {
	p := gplot.New()
	p.Title.Text = c.Title
	p.X.Label.Text = c.XLabel
	p.Y.Label.Text = c.YLabel
	// The legend goes right of the plot, not over it: no line hides.
	legend := gplot.NewLegend()
	legend.Top, legend.Left = true, true
	legend.ThumbnailWidth = vg.Points(24)
	p.Add(plotter.NewGrid())
	yMin, yMax := math.Inf(1), math.Inf(-1)
	for i, s := range c.Series {
		style := draw.LineStyle{Color: Palette[i], Width: vg.Points(1)}
		if s.Thick {
			style.Width = vg.Points(2)
		}
		if s.Dashed {
			style.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		}
		var thumb gplot.Thumbnailer
		for _, seg := range c.segments(s) {
			for _, xy := range seg {
				yMin, yMax = min(yMin, xy.Y), max(yMax, xy.Y)
			}
			l, sc, err := plotter.NewLinePoints(seg)
			if err != nil {
				return nil, legend, fmt.Errorf("plot: series %q: %w", s.Name, err)
			}
			l.LineStyle = style
			thumb = l
			p.Add(l)
			if s.Points {
				sc.GlyphStyle = draw.GlyphStyle{Color: Palette[i], Radius: vg.Points(2.5), Shape: draw.CircleGlyph{}}
				p.Add(sc)
			}
		}
		legend.Add(s.Name, thumb)
	}
	if c.XTicks != nil {
		var ts gplot.ConstantTicks
		for _, x := range c.XTicks {
			ts = append(ts, gplot.Tick{Value: x, Label: strconv.FormatFloat(x, 'g', -1, 64)})
		}
		p.X.Tick.Marker = ts
	}
	if c.LogY {
		lo, hi := decades(yMin, yMax)
		p.Y.Scale = gplot.LogScale{}
		p.Y.Tick.Marker = logTicks{}
		p.Y.Min, p.Y.Max = lo, hi
	}
	return p, legend, nil
}

// WritePNG draws the chart and writes it to path.
func (c LineChart) WritePNG(path string) error { return WritePanelsPNG(path, c) }

// WritePanelsPNG draws the charts one above the other in one PNG (each
// with its own title, axes and legend, drawn as wide as the widest, at its
// own height) and writes it to path: two measures of one sweep that
// share the x axis but not a unit (latency and accuracy against image
// size).
func WritePanelsPNG(path string, charts ...LineChart) error {
	if len(charts) == 0 {
		return fmt.Errorf("%w: no chart to draw", ErrChart)
	}
	w, h := 0, 0
	for _, c := range charts {
		if err := c.Validate(); err != nil {
			return err
		}
		cw, ch := c.size()
		w, h = max(w, cw), h+ch
	}
	canvas := vgimg.NewWith(vgimg.UseWH(vg.Length(w)*vg.Inch/DPI, vg.Length(h)*vg.Inch/DPI), vgimg.UseDPI(DPI))
	full := draw.New(canvas)
	top := 0 // pixels from the top of the image
	for _, c := range charts {
		_, ch := c.size()
		px := func(n int) vg.Length { return vg.Length(n) * vg.Inch / DPI }
		// draw.Crop's bottom is positive upwards, its top negative downwards.
		panel := draw.Crop(full, 0, 0, px(h-top-ch), -px(top))
		if err := c.drawOn(panel); err != nil {
			return err
		}
		top += ch
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	if _, err := (vgimg.PngCanvas{Canvas: canvas}).WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("plot: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("plot: write %s: %w", path, err)
	}
	return nil
}

// drawOn lays the chart out in the canvas area of dc.
func (c LineChart) drawOn(full draw.Canvas) error {
	p, legend, err := c.build()
	if err != nil {
		return err
	}
	// A margin on every side keeps the last tick label inside the image;
	// the legend takes a column on the right, below the title's height.
	dc := draw.Crop(full, vg.Points(6), -vg.Points(6), vg.Points(6), -vg.Points(6))
	lw := legend.Rectangle(dc).Size().X + vg.Points(12)
	p.Draw(draw.Crop(dc, 0, -lw, 0, 0))
	titleH := p.Title.TextStyle.Rectangle(p.Title.Text).Size().Y + p.Title.Padding
	legend.Draw(draw.Crop(dc, dc.Size().X-lw+vg.Points(12), 0, 0, -titleH-vg.Points(6)))
	return nil
}

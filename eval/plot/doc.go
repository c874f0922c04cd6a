// Package plot draws the line charts vlp writes next to its runs and
// benchmarks (loss curves, latency against image size) as PNG files a
// person can read without the terminal that made them: a title naming the
// run, axes with their units and tick labels, and a legend.
//
// # Basics
//
// A LineChart is plain data: a title, two axis labels (put the unit in
// the label: "latency (ms)"), whether y is logarithmic, and one Series per
// line. Validate says what is wrong with it; WritePNG draws it with
// gonum.org/v1/plot and writes the file.
//
//	c := plot.LineChart{Title: "run-1: losses", XLabel: "step", YLabel: "loss (nats)", LogY: true,
//		Series: []plot.Series{{Name: "total", X: steps, Y: totals, Thick: true}}}
//	if err := c.WritePNG("loss-curve.png"); err != nil { … }
//
// # Caveats
//
//   - On a log axis a point that is not positive, and on any axis a NaN or
//     infinite one, cannot be drawn: the line breaks there instead of
//     failing the chart. A series with no drawable point is an error.
//   - The log axis is widened to whole powers of ten, so its end labels
//     are always present; spans under two decades also label 2× and 5×.
//   - Text uses the Liberation fonts that gonum/plot embeds in the binary
//     (codeberg.org/go-fonts/liberation, go:embed): nothing is read from
//     the system or downloaded at run time.
//   - Series colours come from a fixed palette of ten; more series are
//     refused rather than drawn in colours that repeat.
//   - A title wider than the image is clipped: break it with "\n" (each
//     line is centred).
//   - gonum/plot keeps every axis label inside the data area's height: a
//     y label longer than the plot is tall shrinks the plot. Keep labels
//     short ("loss (mean over ranks)"), and put details in the title.
package plot

package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/e2evlp/vlp/coordinator"
	"github.com/e2evlp/vlp/eval/plot"
)

func TestPlotLosses(t *testing.T) {
	falling := func(n int) []lossPoint {
		var ps []lossPoint
		for i := n; i >= 1; i-- { // out of order: plotLosses sorts by step
			ps = append(ps, lossPoint{Step: uint64(i), Losses: map[string]float64{
				"total": 30 / float64(i), "mlm": 4 / float64(i), "itm": 0.7, "det_ce_3": 1}})
		}
		return ps
	}
	tests := []struct {
		name    string
		points  []lossPoint
		wantErr bool
		series  []string
	}{
		{"one point", falling(1), true, nil},
		{"no positive values", []lossPoint{{1, map[string]float64{"total": 0}}, {2, map[string]float64{"total": 0}}}, true, nil},
		{"falling", falling(50), false, []string{"total", "itm", "mlm"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			const title = "vlp train run-7: losses per step (model tiny, global batch 32)"
			chart, err := lossChart(title, tc.points)
			if tc.wantErr {
				if err == nil {
					t.Fatal("no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// The chart: the run's title, a log y axis with a unit label, the
			// main losses in order (no auxiliary layer's), the total thick
			// and falling from its first step to its last.
			if chart.Title != title || !chart.LogY || chart.XLabel == "" || chart.YLabel == "" {
				t.Errorf("chart title %q, log y %v, labels %q / %q", chart.Title, chart.LogY, chart.XLabel, chart.YLabel)
			}
			var names []string
			for _, s := range chart.Series {
				names = append(names, s.Name)
			}
			if strings.Join(names, ",") != strings.Join(tc.series, ",") {
				t.Fatalf("series %v, want %v", names, tc.series)
			}
			total := chart.Series[0]
			if !total.Thick || len(total.X) != len(tc.points) || total.X[0] != 1 || total.Y[0] <= total.Y[len(total.Y)-1] {
				t.Errorf("total: thick %v, x %v…, y %v…: want thick, from step 1, falling", total.Thick, total.X[:3], total.Y[:3])
			}
			path := filepath.Join(t.TempDir(), "curve.png")
			legend, err := plotLosses(path, title, tc.points)
			if err != nil {
				t.Fatal(err)
			}
			if want := "total, itm, mlm (steps 1–50, log scale)"; legend != want {
				t.Errorf("terminal line %q, want %q", legend, want)
			}
			checkPNG(t, path, plot.DefaultWidth) // decodes, at the chart's default size
		})
	}
}

func TestLossCurveTitle(t *testing.T) {
	got := lossCurveTitle("/tmp/out/run", coordinator.JobSpec{Model: "tiny", GlobalBatch: 32})
	if want := "vlp train run: losses per step (model tiny, global batch 32)"; got != want {
		t.Fatalf("title %q, want %q", got, want)
	}
}

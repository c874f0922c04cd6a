package main

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/e2evlp/vlp/coordinator"
	"github.com/e2evlp/vlp/eval/plot"
)

// lossPoint is one committed step's global mean losses.
type lossPoint struct {
	Step   uint64
	Losses map[string]float64
}

// curveNames orders the losses to plot: total first, then by name; the
// auxiliary (per decoder layer) losses are left out, and so is any loss
// beyond the palette's colours.
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
	if len(names) > len(plot.Palette) {
		names = names[:len(plot.Palette)]
	}
	return names
}

// lossCurveTitle names the run in the picture: its directory, model and
// global batch.
func lossCurveTitle(dir string, spec coordinator.JobSpec) string {
	return fmt.Sprintf("vlp train %s: losses per step (model %s, global batch %d)", filepath.Base(dir), spec.Model, spec.GlobalBatch)
}

// lossChart lays out every loss against the step on a log scale, one line
// per loss, the total thicker. A step that lacks a loss, or where it is
// not positive, breaks that loss's line.
func lossChart(title string, points []lossPoint) (plot.LineChart, error) {
	if len(points) < 2 {
		return plot.LineChart{}, fmt.Errorf("loss curve: %d recorded steps, want at least 2", len(points))
	}
	sort.Slice(points, func(i, j int) bool { return points[i].Step < points[j].Step })
	c := plot.LineChart{Title: title, XLabel: "step (committed optimiser steps)",
		YLabel: "loss (mean over ranks)", LogY: true}
	for _, k := range curveNames(points) {
		s := plot.Series{Name: k, Thick: k == "total"}
		for _, p := range points {
			v, ok := p.Losses[k]
			if !ok {
				v = 0 // not drawable on a log axis: the line breaks
			}
			s.X, s.Y = append(s.X, float64(p.Step)), append(s.Y, v)
		}
		c.Series = append(c.Series, s)
	}
	if err := c.Validate(); err != nil {
		return plot.LineChart{}, fmt.Errorf("loss curve: %w", err)
	}
	return c, nil
}

// plotLosses draws the loss curve into path and returns a line for the
// terminal: which losses it shows over which steps.
func plotLosses(path, title string, points []lossPoint) (string, error) {
	c, err := lossChart(title, points)
	if err != nil {
		return "", err
	}
	if err := c.WritePNG(path); err != nil {
		return "", fmt.Errorf("loss curve: %w", err)
	}
	names := make([]string, len(c.Series))
	for i, s := range c.Series {
		names[i] = s.Name
	}
	return fmt.Sprintf("%s (steps %d–%d, log scale)", strings.Join(names, ", "),
		points[0].Step, points[len(points)-1].Step), nil
}

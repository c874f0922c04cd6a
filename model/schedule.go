package model

import (
	"fmt"
	"math"
)

// Schedule is the learning-rate multiplier over training: linear warm-up
// from 0 to 1 over Warmup steps, then cosine decay to MinRatio at Total
// steps (and MinRatio after). Warm-up keeps Adam's first, badly estimated
// second moments from taking huge steps in a freshly initialised
// transformer; cosine decay is what DETR-like and BERT-like recipes settle on.
type Schedule struct {
	Warmup   int     // steps of linear warm-up
	Total    int     // step at which the decay reaches MinRatio
	MinRatio float64 // final multiplier, e.g. 0.1
}

// Validate names the first bad field.
func (s Schedule) Validate() error {
	switch {
	case s.Warmup < 0:
		return fmt.Errorf("%w: Schedule.Warmup = %d, want >= 0", ErrConfig, s.Warmup)
	case s.Total < s.Warmup:
		return fmt.Errorf("%w: Schedule.Total = %d, want >= Warmup %d", ErrConfig, s.Total, s.Warmup)
	case s.MinRatio < 0 || s.MinRatio > 1:
		return fmt.Errorf("%w: Schedule.MinRatio = %v, want in [0, 1]", ErrConfig, s.MinRatio)
	}
	return nil
}

// Factor is the multiplier at step (0-based): the lr of step is base·Factor.
func (s Schedule) Factor(step int) float64 {
	if step < s.Warmup {
		return float64(step+1) / float64(s.Warmup)
	}
	if step >= s.Total || s.Total == s.Warmup {
		return s.MinRatio
	}
	p := float64(step-s.Warmup) / float64(s.Total-s.Warmup)
	return s.MinRatio + (1-s.MinRatio)*0.5*(1+math.Cos(math.Pi*p))
}

package worker

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/e2evlp/vlp/coordinator"
)

// This file is where a job spec becomes the linear model's settings (train.Resolve does it for
// E2E-VLP): a field the linear model cannot honour is refused here rather than ignored.

// The linear model's job options (JobSpec.Options); any other key is refused. E2E-VLP's are
// package train's.
const (
	OptDim     = "dim"     // linear: parameters (default 64)
	OptCompute = "compute" // linear: simulated compute time per pair (a Go duration)
)

// KnownOptions refuses any option of spec that is neither in known nor in legacy (accepted from
// stored specs, not advertised), naming them and the known ones.
func KnownOptions(spec coordinator.JobSpec, known []string, legacy ...string) error {
	var unknown []string
	for k := range spec.Options {
		if !slices.Contains(known, k) && !slices.Contains(legacy, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return fmt.Errorf("%w: options %s: a %s job reads only %s", ErrJobSpec, strings.Join(unknown, ", "), spec.Model, strings.Join(known, ", "))
	}
	return nil
}

// LinearJob is what a job spec says about the linear model.
type LinearJob struct {
	Dim   int
	Hyper LinearHyper
}

// ResolveLinearJob resolves spec for the linear model (LinearLearner). The fields only E2E-VLP
// has — precision bf16, dropout, hyper.backbone_lr, the schedule's warmup_steps and min_lr (the
// linear model's learning rate is constant) — are refused, as are options other than dim and
// compute.
func ResolveLinearJob(spec coordinator.JobSpec) (LinearJob, error) {
	j := LinearJob{Dim: 64}
	h := spec.Hyper
	for _, f := range []struct {
		field string
		set   bool
	}{
		{"precision " + spec.Precision, spec.Precision == coordinator.PrecisionBF16},
		{"dropout", spec.Dropout != nil},
		{"hyper.backbone_lr", h.BackboneLR > 0},
		{"hyper.warmup_steps", h.WarmupSteps > 0},
		{"hyper.min_lr", h.MinLR > 0},
		{"task " + spec.Task, spec.Task != "" && spec.Task != "pretrain"},
		{"init_from", spec.InitFrom != ""},
	} {
		if f.set {
			return j, fmt.Errorf("%w: %s: the linear model has no such setting (it computes in float32 in Go at a constant learning rate)", ErrJobSpec, f.field)
		}
	}
	if err := KnownOptions(spec, []string{OptDim, OptCompute}); err != nil {
		return j, err
	}
	if v, ok := spec.Options[OptDim]; ok {
		d, err := strconv.Atoi(v)
		if err != nil || d < 1 {
			return j, fmt.Errorf("%w: option %s=%q: want a positive integer", ErrJobSpec, OptDim, v)
		}
		j.Dim = d
	}
	j.Hyper = LinearHyper{LR: h.LR, Beta1: h.Beta1, Beta2: h.Beta2, Eps: h.Eps, WeightDecay: h.WeightDecay, ClipNorm: h.ClipNorm}
	if v, ok := spec.Options[OptCompute]; ok {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return j, fmt.Errorf("%w: option %s=%q: want a duration", ErrJobSpec, OptCompute, v)
		}
		j.Hyper.Compute = d
	}
	return j, nil
}

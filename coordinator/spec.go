package coordinator

import (
	"bytes"
	"fmt"
	"os"
	"regexp"

	"go.yaml.in/yaml/v3"
)

// SpecVersion is the version of the JobSpec format this package reads and writes.
const SpecVersion = 1

// JobSpec is everything a job is defined by. It is submitted once (`vlp job submit job.yaml`),
// committed in the Raft log, and handed to every worker that joins. Its JSON form is part of the
// API; its YAML form is what operators write.
type JobSpec struct {
	// Version of the spec format; 0 is read as SpecVersion.
	Version int `json:"version" yaml:"version"`
	// Name of the job; it names the NATS subjects (vlp.<name>.…), so it must match the
	// coordinator's --job. Letters, digits, '-' and '_'.
	Name string `json:"name" yaml:"name"`
	// Dataset is the sharded dataset the epochs visit.
	Dataset DatasetSpec `json:"dataset" yaml:"dataset"`
	// Model is the model preset (tiny, base, …); the worker resolves it.
	Model string `json:"model" yaml:"model"`
	// Dropout overrides the preset's dropout rate, in [0, 1); absent: the preset's.
	Dropout *float64 `json:"dropout,omitempty" yaml:"dropout,omitempty"`
	// Precision of forward and backward: PrecisionFP32 (the default when empty) or PrecisionBF16
	// (autocast: matmuls, convolutions and attention in bf16, reductions and losses in fp32).
	Precision string `json:"precision,omitempty" yaml:"precision,omitempty"`
	// Hyper are the optimiser's hyper-parameters.
	Hyper HyperParams `json:"hyper" yaml:"hyper"`
	// GlobalBatch is the number of pairs one committed step consumes over all ranks.
	GlobalBatch int `json:"global_batch" yaml:"global_batch"`
	// MinWorkers is how many members the ring needs before it trains (default 1).
	MinWorkers int `json:"min_workers" yaml:"min_workers"`
	// MaxWorkers caps the members; a join beyond it is refused with ErrJobFull (default 1024).
	MaxWorkers int `json:"max_workers" yaml:"max_workers"`
	// CheckpointEvery is the checkpoint interval in steps (default 1000).
	CheckpointEvery int `json:"checkpoint_every" yaml:"checkpoint_every"`
	// CheckpointRetain is how many usable checkpoint records the coordinator keeps (default 3);
	// a rollback can reach back to the oldest of them.
	CheckpointRetain int `json:"checkpoint_retain" yaml:"checkpoint_retain"`
	// ProgressEvery is how often, in steps, rank 0 reports progress (default 10).
	ProgressEvery int `json:"progress_every" yaml:"progress_every"`
	// Seed seeds the epoch plans and the model's initialisation.
	Seed uint64 `json:"seed" yaml:"seed"`
	// Epochs is how many passes over the dataset the job makes (default 1).
	Epochs int `json:"epochs" yaml:"epochs"`
	// Units describes the work units of an epoch when the coordinator's UnitSource is SpecUnits
	// (the default): see UnitsSpec.
	Units UnitsSpec `json:"units" yaml:"units"`
	// Task is what the job trains: empty (or "pretrain") for E2E-VLP's pretraining, or a
	// fine-tuning task — "vqa", "nlvr2", "caption", "retrieval" — on the records file that
	// Dataset names (docs/finetune.md). The worker resolves it.
	Task string `json:"task,omitempty" yaml:"task,omitempty"`
	// InitFrom is the pretraining checkpoint a fine-tuning job starts from: a checkpoint store,
	// optionally STORE#ID (default: its latest checkpoint that verifies); empty: from the seed.
	InitFrom string `json:"init_from,omitempty" yaml:"init_from,omitempty"`
	// Options carries anything else the workers need, verbatim (sorted in JSON, so deterministic).
	Options map[string]string `json:"options,omitempty" yaml:"options,omitempty"`
}

// DatasetSpec names the dataset.
type DatasetSpec struct {
	// Manifest is the path or URL of the shard manifest (manifest.json).
	Manifest string `json:"manifest" yaml:"manifest"`
	// SHA256 of the manifest, hex; workers refuse a manifest that does not match.
	SHA256 string `json:"sha256,omitempty" yaml:"sha256,omitempty"`
}

// The precisions a spec can ask for.
const (
	PrecisionFP32 = "fp32"
	PrecisionBF16 = "bf16"
)

// HyperParams are AdamW's and the schedule's parameters. A field left out (or 0) takes the
// model's default; docs/training.md lists every field and what it becomes in each mode.
type HyperParams struct {
	// LR is the peak learning rate (of the transformer, for E2E-VLP).
	LR float64 `json:"lr" yaml:"lr"`
	// BackboneLR is E2E-VLP's backbone peak learning rate; absent: LR.
	BackboneLR float64 `json:"backbone_lr,omitempty" yaml:"backbone_lr,omitempty"`
	// MinLR is where the cosine decay ends, at most LR; the backbone's ends at the same fraction
	// of its own peak.
	MinLR       float64 `json:"min_lr,omitempty" yaml:"min_lr,omitempty"`
	WeightDecay float64 `json:"weight_decay,omitempty" yaml:"weight_decay,omitempty"`
	Beta1       float64 `json:"beta1,omitempty" yaml:"beta1,omitempty"`
	Beta2       float64 `json:"beta2,omitempty" yaml:"beta2,omitempty"`
	Eps         float64 `json:"eps,omitempty" yaml:"eps,omitempty"`
	WarmupSteps int     `json:"warmup_steps,omitempty" yaml:"warmup_steps,omitempty"`
	MaxSteps    int     `json:"max_steps,omitempty" yaml:"max_steps,omitempty"`
	ClipNorm    float64 `json:"clip_norm,omitempty" yaml:"clip_norm,omitempty"`
}

// validate names the first bad field.
func (h *HyperParams) validate(bad func(string, ...any) error) error {
	for _, f := range []struct {
		name string
		v    float64
	}{{"lr", h.LR}, {"backbone_lr", h.BackboneLR}, {"min_lr", h.MinLR}, {"weight_decay", h.WeightDecay},
		{"eps", h.Eps}, {"clip_norm", h.ClipNorm}, {"warmup_steps", float64(h.WarmupSteps)}, {"max_steps", float64(h.MaxSteps)}} {
		if !(f.v >= 0) {
			return bad("hyper.%s %v: must be >= 0", f.name, f.v)
		}
	}
	switch {
	case !(h.Beta1 >= 0 && h.Beta1 < 1):
		return bad("hyper.beta1 %v: must be in [0, 1)", h.Beta1)
	case !(h.Beta2 >= 0 && h.Beta2 < 1):
		return bad("hyper.beta2 %v: must be in [0, 1)", h.Beta2)
	case h.LR > 0 && h.MinLR > h.LR:
		return bad("hyper.min_lr %v: must be <= hyper.lr %v", h.MinLR, h.LR)
	}
	return nil
}

// UnitsSpec describes an epoch's work units for SpecUnits: either Sizes (the pair count of every
// unit, in unit-id order), or Pairs (pairs in the whole epoch) cut into units of PerUnit pairs, the
// last one shorter.
type UnitsSpec struct {
	Pairs   int64    `json:"pairs,omitempty" yaml:"pairs,omitempty"`
	PerUnit int      `json:"per_unit,omitempty" yaml:"per_unit,omitempty"`
	Sizes   []uint32 `json:"sizes,omitempty" yaml:"sizes,omitempty"`
}

// Limits on a spec, so that a submitted spec cannot make the FSM unreasonably large.
const (
	maxUnitsPerEpoch = 1 << 22
	maxWorkersLimit  = 1 << 16
	maxEpochs        = 1 << 20
	maxOptions       = 256
)

var namePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidJobName reports whether name can be a job name (it becomes a NATS subject token).
func ValidJobName(name string) bool { return namePattern.MatchString(name) }

// WithDefaults returns a copy with every zero field that has a default set to it.
func (s JobSpec) WithDefaults() JobSpec {
	if s.Version == 0 {
		s.Version = SpecVersion
	}
	if s.MinWorkers == 0 {
		s.MinWorkers = 1
	}
	if s.MaxWorkers == 0 {
		s.MaxWorkers = 1024
	}
	if s.CheckpointEvery == 0 {
		s.CheckpointEvery = 1000
	}
	if s.CheckpointRetain == 0 {
		s.CheckpointRetain = 3
	}
	if s.ProgressEvery == 0 {
		s.ProgressEvery = 10
	}
	if s.Epochs == 0 {
		s.Epochs = 1
	}
	return s
}

// Validate checks a spec (after WithDefaults); the error wraps ErrInvalidSpec and names the field.
func (s *JobSpec) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidSpec, fmt.Sprintf(format, args...))
	}
	switch {
	case s.Version != SpecVersion:
		return bad("version %d: this coordinator reads version %d", s.Version, SpecVersion)
	case !ValidJobName(s.Name):
		return bad("name %q: want 1-64 letters, digits, '-' or '_'", s.Name)
	case s.GlobalBatch <= 0:
		return bad("global_batch %d: must be > 0", s.GlobalBatch)
	case s.MinWorkers < 1 || s.MinWorkers > maxWorkersLimit:
		return bad("min_workers %d: must be in [1, %d]", s.MinWorkers, maxWorkersLimit)
	case s.MaxWorkers < s.MinWorkers || s.MaxWorkers > maxWorkersLimit:
		return bad("max_workers %d: must be in [min_workers=%d, %d]", s.MaxWorkers, s.MinWorkers, maxWorkersLimit)
	case s.CheckpointEvery < 1:
		return bad("checkpoint_every %d: must be >= 1", s.CheckpointEvery)
	case s.CheckpointRetain < 1 || s.CheckpointRetain > 1000:
		return bad("checkpoint_retain %d: must be in [1, 1000]", s.CheckpointRetain)
	case s.ProgressEvery < 1:
		return bad("progress_every %d: must be >= 1", s.ProgressEvery)
	case s.Epochs < 1 || s.Epochs > maxEpochs:
		return bad("epochs %d: must be in [1, %d]", s.Epochs, maxEpochs)
	case s.Dropout != nil && !(*s.Dropout >= 0 && *s.Dropout < 1):
		return bad("dropout %v: must be in [0, 1)", *s.Dropout)
	case s.Precision != "" && s.Precision != PrecisionFP32 && s.Precision != PrecisionBF16:
		return bad("precision %q: want %s or %s", s.Precision, PrecisionFP32, PrecisionBF16)
	case len(s.Options) > maxOptions:
		return bad("options: %d entries, at most %d", len(s.Options), maxOptions)
	}
	if err := s.Hyper.validate(bad); err != nil {
		return err
	}
	return s.Units.validate(bad)
}

func (u *UnitsSpec) validate(bad func(string, ...any) error) error {
	if len(u.Sizes) > 0 {
		if u.Pairs != 0 || u.PerUnit != 0 {
			return bad("units: give either sizes or pairs+per_unit, not both")
		}
		if len(u.Sizes) > maxUnitsPerEpoch {
			return bad("units.sizes: %d units, at most %d", len(u.Sizes), maxUnitsPerEpoch)
		}
		for i, n := range u.Sizes {
			if n == 0 {
				return bad("units.sizes[%d]: a unit needs at least one pair", i)
			}
		}
		return nil
	}
	if u.Pairs == 0 && u.PerUnit == 0 {
		// No units in the spec: the coordinator's UnitSource must supply them.
		return nil
	}
	if u.Pairs < 1 || u.PerUnit < 1 {
		return bad("units: pairs %d and per_unit %d must both be >= 1", u.Pairs, u.PerUnit)
	}
	if n := (u.Pairs + int64(u.PerUnit) - 1) / int64(u.PerUnit); n > maxUnitsPerEpoch {
		return bad("units: pairs/per_unit gives %d units, at most %d", n, maxUnitsPerEpoch)
	}
	return nil
}

// ParseJobSpecYAML reads a spec written in YAML (strictly: unknown fields are an error), names it
// defaultName if it has no name, applies the defaults and validates it.
func ParseJobSpecYAML(data []byte, defaultName string) (JobSpec, error) {
	var s JobSpec
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return JobSpec{}, fmt.Errorf("%w: yaml: %v", ErrInvalidSpec, err)
	}
	if s.Name == "" {
		s.Name = defaultName
	}
	s = s.WithDefaults()
	if err := s.Validate(); err != nil {
		return JobSpec{}, err
	}
	return s, nil
}

// LoadJobSpec reads and validates a YAML spec file (see ParseJobSpecYAML).
func LoadJobSpec(path, defaultName string) (JobSpec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return JobSpec{}, fmt.Errorf("coordinator: job spec: %w", err)
	}
	s, err := ParseJobSpecYAML(data, defaultName)
	if err != nil {
		return JobSpec{}, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

package worker

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/e2evlp/vlp/coordinator"
	"github.com/e2evlp/vlp/data"
	"github.com/e2evlp/vlp/model"
)

// This file is where a job spec becomes a learner's settings: the one place that reads the
// spec's model fields, hyper-parameters and options. `vlp worker join` resolves the spec it is
// handed; `vlp train --local` builds a spec from its flags and resolves it here too; `vlp train`
// submits the same spec to its workers. So a field, and the flag that fills it, means the same in
// every mode, and a field a model cannot honour is refused here rather than ignored.

// Job options (JobSpec.Options) the learners read. Any other key is refused: a misspelt option
// would otherwise be ignored.
const (
	OptImages        = "images"         // E2E-VLP on the synthetic world: its images (default 512)
	OptImageSize     = "image_size"     // E2E-VLP: side of the square input images in pixels (default 64)
	OptVocab         = "vocab"          // E2E-VLP on shards: the tokenizer's vocab.txt
	OptVocabSHA256   = "vocab_sha256"   // its sha256, hex
	OptITMNegatives  = "itm_negatives"  // E2E-VLP: share of rows given a mismatched text for ITM (default 0.5)
	OptAttributeMask = "attribute_mask" // E2E-VLP: probability an attribute word (a colour, an attribute name of the data) is masked for MLM (default 0: BERT's 15% like any word)
	OptBucketMiB     = "bucket_mib"     // E2E-VLP: size of an all-reduce bucket in MiB (default: 25, or an eighth of a smaller model's gradients; the first one at most 1)
	OptDim           = "dim"            // linear: parameters (default 64)
	OptCompute       = "compute"        // linear: simulated compute time per pair (a Go duration)

	// optBackboneLR is the spelling of hyper.backbone_lr in specs stored before that field
	// existed; a resumed run still reads it.
	optBackboneLR = "backbone_lr"
)

// VLPOptions are the job options of an E2E-VLP job.
type VLPOptions struct {
	Images, ImageSize  int
	Vocab, VocabSHA256 string
	AttributeMask      float64 // data.Config.AttributeMaskProb
	ITMNegatives       float64 // data.Config.ITMNegProb
	BucketMiB          float64 // VLPConfig.BucketBytes in MiB; 0: automatic
	backboneLR         float64 // the older spelling of hyper.backbone_lr; 0: absent
}

// ParseVLPOptions reads the options of an E2E-VLP job, with their defaults; an unknown key, or a
// value that does not parse, is an error naming the option.
func ParseVLPOptions(spec coordinator.JobSpec) (VLPOptions, error) {
	o := VLPOptions{Images: 512, ImageSize: 64, ITMNegatives: data.DefaultConfig().ITMNegProb, Vocab: spec.Options[OptVocab], VocabSHA256: spec.Options[OptVocabSHA256]}
	if err := knownOptions(spec, []string{OptImages, OptImageSize, OptVocab, OptVocabSHA256, OptAttributeMask, OptITMNegatives, OptBucketMiB}, optBackboneLR); err != nil {
		return o, err
	}
	for key, dst := range map[string]*int{OptImages: &o.Images, OptImageSize: &o.ImageSize} {
		if v, ok := spec.Options[key]; ok {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return o, fmt.Errorf("%w: option %s=%q: want a positive integer", ErrJobSpec, key, v)
			}
			*dst = n
		}
	}
	for key, dst := range map[string]*float64{OptAttributeMask: &o.AttributeMask, OptITMNegatives: &o.ITMNegatives} {
		if v, ok := spec.Options[key]; ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || !(f >= 0 && f <= 1) {
				return o, fmt.Errorf("%w: option %s=%q: want a probability in [0,1]", ErrJobSpec, key, v)
			}
			*dst = f
		}
	}
	if v, ok := spec.Options[OptBucketMiB]; ok {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || !(f >= 1.0/1024 && f <= 1024) {
			return o, fmt.Errorf("%w: option %s=%q: want a size in MiB between 1/1024 and 1024", ErrJobSpec, OptBucketMiB, v)
		}
		o.BucketMiB = f
	}
	if v, ok := spec.Options[optBackboneLR]; ok {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || !(f > 0) {
			return o, fmt.Errorf("%w: option %s=%q: want a positive number", ErrJobSpec, optBackboneLR, v)
		}
		o.backboneLR = f
	}
	return o, nil
}

// knownOptions refuses any option of spec that is neither in known nor in legacy (accepted from
// stored specs, not advertised).
func knownOptions(spec coordinator.JobSpec, known []string, legacy ...string) error {
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

// VLPJob is what a job spec says about training E2E-VLP, resolved against its preset.
type VLPJob struct {
	// Model is the preset with the spec's dropout; the vocabulary, class and attribute counts
	// grow to fit the data when the learner is built.
	Model model.Config
	// Train is the optimiser (hyper.lr, backbone_lr, weight_decay, beta1, beta2, eps), the
	// clipping bound (hyper.clip_norm, else the preset's), the schedule (hyper.warmup_steps,
	// min_lr; it lasts hyper.max_steps, or the job's epochs), the dropout seed and the precision.
	Train   model.TrainConfig
	Options VLPOptions
	// Attributes are the data's attribute names (FitData): with the colour words, the words
	// options.attribute_mask masks.
	Attributes []string
}

// ResolveVLPJob resolves spec for E2E-VLP. pairs is the number of pairs in one epoch: without
// hyper.max_steps the schedule lasts epochs·pairs/global_batch steps. Errors wrap ErrJobSpec and
// name the spec field.
func ResolveVLPJob(spec coordinator.JobSpec, pairs int64) (VLPJob, error) {
	var j VLPJob
	var err error
	if j.Options, err = ParseVLPOptions(spec); err != nil {
		return j, err
	}
	if j.Model, err = model.Preset(spec.Model); err != nil {
		return j, fmt.Errorf("%w: model: %w", ErrJobSpec, err)
	}
	if spec.Dropout != nil {
		j.Model.Dropout = *spec.Dropout
	}
	h := spec.Hyper
	total := h.MaxSteps
	if total <= 0 {
		total = max(1, int(pairs*int64(max(spec.Epochs, 1))/int64(max(spec.GlobalBatch, 1))))
	}
	tc := model.DefaultTrainConfig(total)
	tc.Seed = spec.Seed
	if h.LR > 0 {
		tc.LR, tc.BackboneLR = h.LR, h.LR
	}
	switch {
	case h.BackboneLR > 0:
		tc.BackboneLR = h.BackboneLR
	case j.Options.backboneLR > 0:
		tc.BackboneLR = j.Options.backboneLR
	}
	for _, f := range []struct {
		v   float64
		dst *float64
	}{{h.WeightDecay, &tc.WeightDecay}, {h.Beta1, &tc.Beta1}, {h.Beta2, &tc.Beta2}, {h.Eps, &tc.Eps}} {
		if f.v > 0 {
			*f.dst = f.v
		}
	}
	tc.ClipNorm = model.PresetClipNorm(spec.Model)
	if h.ClipNorm > 0 {
		tc.ClipNorm = h.ClipNorm
	}
	tc.Schedule.Warmup = min(total/10, 100)
	if h.WarmupSteps > 0 {
		if h.WarmupSteps > total {
			return j, fmt.Errorf("%w: hyper.warmup_steps %d: longer than the %d steps the job trains", ErrJobSpec, h.WarmupSteps, total)
		}
		tc.Schedule.Warmup = h.WarmupSteps
	}
	if h.MinLR > 0 {
		if h.MinLR > tc.LR {
			return j, fmt.Errorf("%w: hyper.min_lr %v: above the peak learning rate %v", ErrJobSpec, h.MinLR, tc.LR)
		}
		tc.Schedule.MinRatio = h.MinLR / tc.LR
	}
	tc.BF16 = spec.Precision == coordinator.PrecisionBF16
	if err := tc.Validate(); err != nil {
		return j, fmt.Errorf("%w: hyper: %w", ErrJobSpec, err)
	}
	j.Train = tc
	return j, nil
}

// FitData grows the model's vocabulary, class and attribute counts to fit the data's, and keeps
// the attribute names as the words options.attribute_mask masks.
func (j *VLPJob) FitData(vocab int, classes, attributes []string) {
	j.Model.VocabSize = max(j.Model.VocabSize, vocab)
	j.Model.NumClasses = max(j.Model.NumClasses, len(classes))
	j.Model.NumAttributes = max(j.Model.NumAttributes, len(attributes))
	j.Attributes = append([]string(nil), attributes...)
}

// DataConfig is how batches are made for the job: square images of options.image_size, the
// model's text lengths, the job's seed (with the epoch and the pair id it seeds MLM masking and
// ITM negatives), options.itm_negatives, options.attribute_mask over the colour words and the data's attribute
// names (FitData). BatchSize is left for the caller: the global batch in one process, a rank's
// share in a worker.
func (j VLPJob) DataConfig() data.Config {
	d := data.DefaultConfig()
	d.Image = data.SquareImageConfig(j.Options.ImageSize)
	d.MaxTextLen, d.MaxCaptionLen = j.Model.MaxTextLen, j.Model.MaxCaptionLen
	d.Seed = j.Train.Seed
	d.AttributeMaskProb, d.AttributeWords, d.ITMNegProb = j.Options.AttributeMask, j.Attributes, j.Options.ITMNegatives
	return d
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
	} {
		if f.set {
			return j, fmt.Errorf("%w: %s: the linear model has no such setting (it computes in float32 in Go at a constant learning rate)", ErrJobSpec, f.field)
		}
	}
	if err := knownOptions(spec, []string{OptDim, OptCompute}); err != nil {
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

// BucketBytes is options.bucket_mib in bytes (VLPConfig.BucketBytes; 0: automatic).
func (j VLPJob) BucketBytes() int { return int(j.Options.BucketMiB * (1 << 20)) }

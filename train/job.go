package train

import (
	"fmt"
	"strconv"

	"github.com/e2evlp/vlp/coordinator"
	"github.com/e2evlp/vlp/data"
	"github.com/e2evlp/vlp/model"
	"github.com/e2evlp/vlp/worker"
)

// This file is where a job spec becomes E2E-VLP's settings: the one place that reads the
// spec's model fields, hyper-parameters and options. `vlp worker join` resolves the spec it is
// handed; `vlp train --local` builds a spec from its flags and resolves it here too; `vlp train`
// submits the same spec to its workers. So a field, and the flag that fills it, means the same in
// every mode, and a field a model cannot honour is refused here rather than ignored.

// E2E-VLP's job options (JobSpec.Options). Any other key is refused: a misspelt option would
// otherwise be ignored.
const (
	OptImages         = "images"           // E2E-VLP on the synthetic world: its images (default 512)
	OptImageSize      = "image_size"       // E2E-VLP: side of the square input images in pixels (default 64)
	OptVocab          = "vocab"            // E2E-VLP on shards: the tokenizer's vocab.txt
	OptVocabSHA256    = "vocab_sha256"     // its sha256, hex
	OptITMNegatives   = "itm_negatives"    // E2E-VLP: share of rows given a mismatched text for ITM (default 0.5)
	OptAttributeMask  = "attribute_mask"   // E2E-VLP: probability an attribute word (a colour, an attribute name of the data) is masked for MLM (default 0: BERT's 15% like any word)
	OptBucketMiB      = "bucket_mib"       // E2E-VLP: size of an all-reduce bucket in MiB (default: an eighth of the gradients within 1–25; the first one at most 1)
	OptOverlap        = "overlap"          // E2E-VLP: "false" all-reduces the gradients after backward instead of bucket by bucket during it (default true)
	OptChannelsLast   = "channels_last"    // E2E-VLP: "true" runs the backbone's convolutions in the channels-last (NHWC) memory layout, the same function (default false)
	OptTF32           = "tf32"             // E2E-VLP on CUDA: "true" lets float32 matrix products use TensorFloat-32 (default false)
	OptCuDNNBenchmark = "cudnn_benchmark"  // E2E-VLP on CUDA: "true" lets cuDNN time each convolution shape's algorithms (default false)
	OptAnswerMinCount = "answer_min_count" // task vqa: an answer is in the vocabulary when it is the majority answer of this many training questions (default 9: VQA v2's 3,129)

	// optBackboneLR is the spelling of hyper.backbone_lr in specs stored before that field
	// existed; a resumed run still reads it.
	optBackboneLR = "backbone_lr"
)

// Options are the job options of an E2E-VLP job.
type Options struct {
	Images, ImageSize  int
	Vocab, VocabSHA256 string
	AttributeMask      float64 // data.Config.AttributeMaskProb
	ITMNegatives       float64 // data.Config.ITMNegProb
	BucketMiB          float64 // Config.BucketBytes in MiB; 0: automatic
	NoOverlap          bool    // options.overlap false: Config.Overlap off
	ChannelsLast       bool    // options.channels_last: model.Config.ChannelsLast
	TF32               bool    // options.tf32: model.TrainConfig.TF32
	CuDNNBenchmark     bool    // options.cudnn_benchmark: model.TrainConfig.CuDNNBenchmark
	AnswerMinCount     int     // downstream.VocabConfig.MinCount; 0: its default
	backboneLR         float64 // the older spelling of hyper.backbone_lr; 0: absent
}

// ParseOptions reads the options of an E2E-VLP job, with their defaults; an unknown key, or a
// value that does not parse, is an error naming the option.
func ParseOptions(spec coordinator.JobSpec) (Options, error) {
	o := Options{Images: 512, ImageSize: 64, ITMNegatives: data.DefaultConfig().ITMNegProb, Vocab: spec.Options[OptVocab], VocabSHA256: spec.Options[OptVocabSHA256]}
	if err := worker.KnownOptions(spec, []string{OptImages, OptImageSize, OptVocab, OptVocabSHA256, OptAttributeMask, OptITMNegatives, OptBucketMiB, OptOverlap, OptChannelsLast, OptTF32, OptCuDNNBenchmark, OptAnswerMinCount}, optBackboneLR); err != nil {
		return o, err
	}
	for key, dst := range map[string]*int{OptImages: &o.Images, OptImageSize: &o.ImageSize, OptAnswerMinCount: &o.AnswerMinCount} {
		if v, ok := spec.Options[key]; ok {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return o, fmt.Errorf("%w: option %s=%q: want a positive integer", worker.ErrJobSpec, key, v)
			}
			*dst = n
		}
	}
	for key, dst := range map[string]*float64{OptAttributeMask: &o.AttributeMask, OptITMNegatives: &o.ITMNegatives} {
		if v, ok := spec.Options[key]; ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || !(f >= 0 && f <= 1) {
				return o, fmt.Errorf("%w: option %s=%q: want a probability in [0,1]", worker.ErrJobSpec, key, v)
			}
			*dst = f
		}
	}
	if v, ok := spec.Options[OptBucketMiB]; ok {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || !(f >= 1.0/1024 && f <= 1024) {
			return o, fmt.Errorf("%w: option %s=%q: want a size in MiB between 1/1024 and 1024", worker.ErrJobSpec, OptBucketMiB, v)
		}
		o.BucketMiB = f
	}
	if v, ok := spec.Options[OptOverlap]; ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return o, fmt.Errorf("%w: option %s=%q: want true or false", worker.ErrJobSpec, OptOverlap, v)
		}
		o.NoOverlap = !b
	}
	for key, dst := range map[string]*bool{OptChannelsLast: &o.ChannelsLast, OptTF32: &o.TF32, OptCuDNNBenchmark: &o.CuDNNBenchmark} {
		if v, ok := spec.Options[key]; ok {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return o, fmt.Errorf("%w: option %s=%q: want true or false", worker.ErrJobSpec, key, v)
			}
			*dst = b
		}
	}
	if v, ok := spec.Options[optBackboneLR]; ok {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || !(f > 0) {
			return o, fmt.Errorf("%w: option %s=%q: want a positive number", worker.ErrJobSpec, optBackboneLR, v)
		}
		o.backboneLR = f
	}
	return o, nil
}

// Job is what a job spec says about training E2E-VLP, resolved against its preset.
type Job struct {
	// Model is the preset with the spec's dropout and options.channels_last; the vocabulary,
	// class and attribute counts grow to fit the data when the learner is built.
	Model model.Config
	// Train is the optimiser (hyper.lr, backbone_lr, weight_decay, beta1, beta2, eps), the
	// clipping bound (hyper.clip_norm, else the preset's), the schedule (hyper.warmup_steps,
	// min_lr; it lasts hyper.max_steps, or the job's epochs), the dropout seed and the precision.
	Train   model.TrainConfig
	Options Options
	// Attributes are the data's attribute names (FitData): with the colour words, the words
	// options.attribute_mask masks.
	Attributes []string
	// Task is the spec's task (pretraining when empty); InitFrom its init_from.
	Task     Task
	InitFrom string
}

// Resolve resolves spec for E2E-VLP. pairs is the number of pairs in one epoch: without
// hyper.max_steps the schedule lasts epochs·pairs/global_batch steps. Errors wrap worker.ErrJobSpec and
// name the spec field.
func Resolve(spec coordinator.JobSpec, pairs int64) (Job, error) {
	var j Job
	var err error
	if j.Options, err = ParseOptions(spec); err != nil {
		return j, err
	}
	if j.Task, err = ParseTask(spec.Task); err != nil {
		return j, err
	}
	if err := resolveTask(spec, j.Task); err != nil {
		return j, err
	}
	j.InitFrom = spec.InitFrom
	if j.Model, err = model.Preset(spec.Model); err != nil {
		return j, fmt.Errorf("%w: model: %w", worker.ErrJobSpec, err)
	}
	if spec.Dropout != nil {
		j.Model.Dropout = *spec.Dropout
	}
	j.Model.ChannelsLast = j.Options.ChannelsLast
	h := spec.Hyper
	total := h.MaxSteps
	if total <= 0 {
		total = max(1, int(pairs*int64(max(spec.Epochs, 1))/int64(max(spec.GlobalBatch, 1))))
	}
	tc := model.DefaultTrainConfig(total)
	tc.Seed = spec.Seed
	if j.Task.FineTuning() {
		tc.LR = j.Task.DefaultLR(spec.Model)
		tc.BackboneLR = tc.LR
	}
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
			return j, fmt.Errorf("%w: hyper.warmup_steps %d: longer than the %d steps the job trains", worker.ErrJobSpec, h.WarmupSteps, total)
		}
		tc.Schedule.Warmup = h.WarmupSteps
	}
	if h.MinLR > 0 {
		if h.MinLR > tc.LR {
			return j, fmt.Errorf("%w: hyper.min_lr %v: above the peak learning rate %v", worker.ErrJobSpec, h.MinLR, tc.LR)
		}
		tc.Schedule.MinRatio = h.MinLR / tc.LR
	}
	tc.BF16 = spec.Precision == coordinator.PrecisionBF16
	tc.TF32, tc.CuDNNBenchmark = j.Options.TF32, j.Options.CuDNNBenchmark
	if err := tc.Validate(); err != nil {
		return j, fmt.Errorf("%w: hyper: %w", worker.ErrJobSpec, err)
	}
	j.Train = tc
	return j, nil
}

// FitData grows the model's vocabulary, class and attribute counts to fit the data's, and keeps
// the attribute names as the words options.attribute_mask masks.
func (j *Job) FitData(vocab int, classes, attributes []string) {
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
func (j Job) DataConfig() data.Config {
	d := data.DefaultConfig()
	d.Image = data.SquareImageConfig(j.Options.ImageSize)
	d.MaxTextLen, d.MaxCaptionLen = j.Model.MaxTextLen, j.Model.MaxCaptionLen
	d.Seed = j.Train.Seed
	d.AttributeMaskProb, d.AttributeWords, d.ITMNegProb = j.Options.AttributeMask, j.Attributes, j.Options.ITMNegatives
	return d
}

// BucketBytes is options.bucket_mib in bytes (Config.BucketBytes; 0: automatic).
func (j Job) BucketBytes() int { return int(j.Options.BucketMiB * (1 << 20)) }

// Overlap is Config.Overlap: the gradients all-reduced bucket by bucket during backward, unless
// options.overlap is false.
func (j Job) Overlap() bool { return !j.Options.NoOverlap }

// resolveTask refuses what a fine-tuning task cannot honour: pretraining's data options, and an
// init_from on a pretraining job (it starts from the seed, and resumes from its own checkpoints).
func resolveTask(spec coordinator.JobSpec, task Task) error {
	if v, ok := spec.Options[OptAnswerMinCount]; ok && task != TaskVQA {
		return fmt.Errorf("%w: option %s=%s applies to task vqa only", worker.ErrJobSpec, OptAnswerMinCount, v)
	}
	if !task.FineTuning() {
		if spec.InitFrom != "" {
			return fmt.Errorf("%w: init_from %q: a pretraining job starts from the seed (and resumes from its own checkpoints); init_from applies to a task", worker.ErrJobSpec, spec.InitFrom)
		}
		return nil
	}
	for _, o := range []string{OptImages, OptITMNegatives, OptAttributeMask} {
		if v, ok := spec.Options[o]; ok {
			return fmt.Errorf("%w: option %s=%s shapes pretraining's data; task %s reads its records", worker.ErrJobSpec, o, v, task)
		}
	}
	if spec.Dataset.Manifest == "" {
		return fmt.Errorf("%w: task %s: dataset.manifest names no records file (vlp downstream import --records)", worker.ErrJobSpec, task)
	}
	if spec.InitFrom != "" {
		if _, _, err := ParseCheckpointRef(spec.InitFrom); err != nil {
			return err
		}
	}
	return nil
}

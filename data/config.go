package data

import (
	"errors"
	"fmt"
	"runtime"
)

// ErrConfig: a Config field is out of range.
var ErrConfig = errors.New("data: invalid config")

// Config holds the pipeline's settings. Start from DefaultConfig.
type Config struct {
	BatchSize int         // rows per batch (the last batch may be smaller)
	Image     ImageConfig // resize rule

	MaxTextLen    int // encoder text length cap, [CLS] and [SEP] included
	MaxCaptionLen int // decoder caption length cap, [CLS] and [SEP] included

	MLMProb float64 // share of non-special tokens masked (BERT: 0.15)
	// AttributeMaskProb masks attribute words — colour words and the words
	// of AttributeWords — with this probability when it is above MLMProb
	// (mlm.go): 0 is BERT's masking.
	AttributeMaskProb float64
	// AttributeWords name the dataset's object attributes ("small",
	// "wooden", "light blue"); each word of them that is a whole token is
	// an attribute word. Colour words always are.
	AttributeWords []string
	ITMNegProb     float64 // share of rows given a mismatched text (0.5)
	HardNegProb    float64 // share of the negatives that are colour swaps (see itm.go)
	ExchangeProb   float64 // share of colour swaps that exchange two colours of the text, when it names two

	Seed  uint64 // with Epoch and the pair id, seeds every random choice
	Epoch uint64

	Workers  int // decode goroutines (default: GOMAXPROCS)
	Prefetch int // ready batches buffered ahead of the consumer
	// Decoder decodes JPEGs; nil means GoDecoder, which gives the same
	// pixels on every machine. NewDecoder() picks libjpeg-turbo when it
	// loads: 2–4× faster, but its pixels differ from image/jpeg's by a grey
	// level or two, so all hosts of a job that must be bitwise reproducible
	// should use the same decoder.
	Decoder Decoder
}

// DefaultConfig returns the base preset's pipeline: 32 rows, shorter side 512
// (longer ≤ 853), texts up to 40 tokens (COCO captions average ~11 words, VG
// regions ~5; 40 keeps >99% whole), BERT's 15% masking, half the rows
// mismatched, half of those hard, 2 batches prefetched.
func DefaultConfig() Config {
	return Config{
		BatchSize:     32,
		Image:         DefaultImageConfig(),
		MaxTextLen:    40,
		MaxCaptionLen: 40,
		MLMProb:       0.15,
		ITMNegProb:    0.5,
		HardNegProb:   0.5,
		Workers:       runtime.GOMAXPROCS(0),
		Prefetch:      2,
	}
}

// Validate checks every field and names the first bad one.
func (c *Config) Validate() error {
	switch {
	case c.BatchSize < 1:
		return fmt.Errorf("%w: BatchSize %d < 1", ErrConfig, c.BatchSize)
	case c.MaxTextLen < 2:
		return fmt.Errorf("%w: MaxTextLen %d < 2", ErrConfig, c.MaxTextLen)
	case c.MaxCaptionLen < 2:
		return fmt.Errorf("%w: MaxCaptionLen %d < 2", ErrConfig, c.MaxCaptionLen)
	case c.MLMProb < 0 || c.MLMProb > 1:
		return fmt.Errorf("%w: MLMProb %v outside [0,1]", ErrConfig, c.MLMProb)
	case c.AttributeMaskProb < 0 || c.AttributeMaskProb > 1:
		return fmt.Errorf("%w: AttributeMaskProb %v outside [0,1]", ErrConfig, c.AttributeMaskProb)
	case c.ITMNegProb < 0 || c.ITMNegProb > 1:
		return fmt.Errorf("%w: ITMNegProb %v outside [0,1]", ErrConfig, c.ITMNegProb)
	case c.ExchangeProb < 0 || c.ExchangeProb > 1:
		return fmt.Errorf("%w: ExchangeProb %v outside [0,1]", ErrConfig, c.ExchangeProb)
	case c.HardNegProb < 0 || c.HardNegProb > 1:
		return fmt.Errorf("%w: HardNegProb %v outside [0,1]", ErrConfig, c.HardNegProb)
	case c.Workers < 1:
		return fmt.Errorf("%w: Workers %d < 1", ErrConfig, c.Workers)
	case c.Prefetch < 1:
		return fmt.Errorf("%w: Prefetch %d < 1", ErrConfig, c.Prefetch)
	}
	return c.Image.Validate()
}

func (c *Config) decoder() Decoder {
	if c.Decoder == nil {
		return GoDecoder{}
	}
	return c.Decoder
}

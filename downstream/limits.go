package downstream

import "fmt"

// Limits bound what one import reads and holds. The zero value of a field
// means its default (DefaultLimits); every default is far above what the
// real datasets need, so only hostile or broken input meets them.
type Limits struct {
	// MaxFileBytes refuses larger annotation files before reading them;
	// default 2 GiB (VQA v2's largest file, the train annotations, is
	// 332 MB). Records are held in memory, so this bounds memory too.
	MaxFileBytes int64
	// MaxRecordBytes is the largest array element or line kept; default
	// 1 MiB (a VQA annotation is about 1 KB, a Karpathy image entry 2 KB).
	MaxRecordBytes int
	// MaxTextBytes is the longest question, sentence or answer kept;
	// default 2000, as the shard importer's texts.
	MaxTextBytes int
	// MaxAnswers is the most human answers a VQA question may have;
	// default 100 (VQA v2 has 10).
	MaxAnswers int
	// MaxImageBytes, MaxImageSide and MaxImagePixels bound an image file
	// and the dimensions its header declares; defaults 64 MiB, 20000 px and
	// 100 megapixels, the shard importer's limits.
	MaxImageBytes  int64
	MaxImageSide   int
	MaxImagePixels int64
}

// DefaultLimits returns the defaults.
func DefaultLimits() Limits { return Limits{}.WithDefaults() }

// WithDefaults returns l with every zero field set to its default.
func (l Limits) WithDefaults() Limits {
	if l.MaxFileBytes == 0 {
		l.MaxFileBytes = 2 << 30
	}
	if l.MaxRecordBytes == 0 {
		l.MaxRecordBytes = 1 << 20
	}
	if l.MaxTextBytes == 0 {
		l.MaxTextBytes = 2000
	}
	if l.MaxAnswers == 0 {
		l.MaxAnswers = 100
	}
	if l.MaxImageBytes == 0 {
		l.MaxImageBytes = 64 << 20
	}
	if l.MaxImageSide == 0 {
		l.MaxImageSide = 20000
	}
	if l.MaxImagePixels == 0 {
		l.MaxImagePixels = 100_000_000
	}
	return l
}

// Validate checks l after defaults; the error names the field and its bound.
func (l Limits) Validate() error {
	l = l.WithDefaults()
	switch {
	case l.MaxFileBytes < 1:
		return fmt.Errorf("%w: MaxFileBytes %d < 1", ErrInvalidConfig, l.MaxFileBytes)
	case l.MaxRecordBytes < 64 || l.MaxRecordBytes > 1<<30:
		return fmt.Errorf("%w: MaxRecordBytes %d outside [64, 1 GiB]", ErrInvalidConfig, l.MaxRecordBytes)
	case l.MaxTextBytes < 1:
		return fmt.Errorf("%w: MaxTextBytes %d < 1", ErrInvalidConfig, l.MaxTextBytes)
	case l.MaxAnswers < 1:
		return fmt.Errorf("%w: MaxAnswers %d < 1", ErrInvalidConfig, l.MaxAnswers)
	case l.MaxImageBytes < 1 || l.MaxImageSide < 1 || l.MaxImagePixels < 1:
		return fmt.Errorf("%w: MaxImageBytes %d, MaxImageSide %d and MaxImagePixels %d must be ≥ 1",
			ErrInvalidConfig, l.MaxImageBytes, l.MaxImageSide, l.MaxImagePixels)
	}
	return nil
}

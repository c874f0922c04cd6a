package synth

import (
	"fmt"
	"sync"
)

// FinetuneConfig says how a shapes world is written as the fine-tuning
// datasets' files (ExportVQA, ExportNLVR2, ExportKarpathy).
type FinetuneConfig struct {
	World Config
	// HeldOut is the fraction of the images (NLVR2: of the eight-image
	// sets) held out of training, the last ones by index: VQA's val2014;
	// NLVR2's dev then test1, half each; Karpathy's val then test, half
	// each. Default 0.2.
	HeldOut float64
	// Questions is the number of VQA questions per image; default 5, one
	// of each kind.
	Questions int
	// Noise is the chance that a synthetic VQA annotator gives a wrong
	// answer; default 0.2 (then about 3 questions in 1,000 have a wrong
	// majority answer, mostly yes/no ones). Negative means none.
	Noise float64
	// Restval is the fraction of the Karpathy training images marked
	// "restval" (COCO's val2014 images that the split trains on); default
	// 0.25, about the real split's share.
	Restval float64
	// Workers render images in parallel; default 4.
	Workers int
}

// WithDefaults returns c with every zero field set to its default.
func (c FinetuneConfig) WithDefaults() FinetuneConfig {
	c.World = c.World.WithDefaults()
	if c.HeldOut == 0 {
		c.HeldOut = 0.2
	}
	if c.Questions == 0 {
		c.Questions = 5
	}
	if c.Noise == 0 {
		c.Noise = 0.2
	}
	if c.Noise < 0 {
		c.Noise = 0
	}
	if c.Restval == 0 {
		c.Restval = 0.25
	}
	if c.Workers == 0 {
		c.Workers = 4
	}
	return c
}

// Validate checks c after defaults; the error names the field and its
// bound.
func (c FinetuneConfig) Validate() error {
	if err := c.World.Validate(); err != nil {
		return err
	}
	c = c.WithDefaults()
	switch {
	case c.HeldOut < 0 || c.HeldOut >= 1:
		return fmt.Errorf("%w: HeldOut %g outside [0, 1)", ErrInvalidConfig, c.HeldOut)
	case c.Questions < 1 || c.Questions > 100:
		return fmt.Errorf("%w: Questions %d outside [1, 100]", ErrInvalidConfig, c.Questions)
	case c.Noise >= 0.5:
		return fmt.Errorf("%w: Noise %g ≥ 0.5 (the majority would often be wrong)", ErrInvalidConfig, c.Noise)
	case c.Restval < 0 || c.Restval >= 1:
		return fmt.Errorf("%w: Restval %g outside [0, 1)", ErrInvalidConfig, c.Restval)
	case c.Workers < 1:
		return fmt.Errorf("%w: Workers %d < 1", ErrInvalidConfig, c.Workers)
	}
	return nil
}

// heldOut splits n items: the first train are for training, the next
// half of the rest (rounded up) the first held-out split, the others the
// second.
func (c FinetuneConfig) heldOut(n int) (train, firstEnd int) {
	held := int(c.HeldOut*float64(n) + 0.5)
	train = n - held
	return train, train + (held+1)/2
}

// renderEach renders images 0..n-1 of the world on cfg.Workers goroutines,
// encodes each with encode, and calls visit in index order.
func renderEach(cfg FinetuneConfig, n int, encode func(Picture) ([]byte, error), visit func(Picture, []byte) error) error {
	const batch = 256
	pics := make([]Picture, batch)
	data := make([][]byte, batch)
	errs := make([]error, batch)
	for start := 0; start < n; start += batch {
		m := min(batch, n-start)
		var wg sync.WaitGroup
		next := make(chan int)
		for g := 0; g < cfg.Workers; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := range next {
					pics[k] = Scene(cfg.World, start+k)
					data[k], errs[k] = encode(pics[k])
				}
			}()
		}
		for k := 0; k < m; k++ {
			next <- k
		}
		close(next)
		wg.Wait()
		for k := 0; k < m; k++ {
			if errs[k] != nil {
				return fmt.Errorf("synth: image %d: %w", start+k, errs[k])
			}
			if err := visit(pics[k], data[k]); err != nil {
				return err
			}
		}
	}
	return nil
}

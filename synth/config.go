package synth

import (
	"errors"
	"fmt"
)

// ErrInvalidConfig is wrapped by every Validate error.
var ErrInvalidConfig = errors.New("synth: invalid config")

// Size bounds of a generated image, in pixels.
const (
	MinSide = 32
	MaxSide = 1024
)

// Config describes a shapes world. The zero value of a field means its
// default (see DefaultConfig), so Config{Seed: 7, Images: 100} is usable.
type Config struct {
	Seed   uint64 // every pixel and word is a pure function of (Seed, image index)
	Images int    // number of images in the world (indices 0..Images-1)
	Width  int    // image width in pixels; default 96 (small enough for CPU tests)
	Height int    // image height in pixels; default 96

	MinObjects int // fewest shapes per image; default 1
	MaxObjects int // most shapes per image; default 4 (more crowd a 96 px image)
	Captions   int // captions per image; default 5, as in COCO

	// Texture is the amplitude (0–255) of the background noise; default 6,
	// enough that the background is not a flat colour, far too little to be
	// mistaken for a shape. Negative means a plain background.
	Texture int
}

// DefaultConfig returns the defaults with the given seed and image count.
func DefaultConfig(seed uint64, images int) Config {
	return Config{Seed: seed, Images: images}.WithDefaults()
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Width == 0 {
		c.Width = 96
	}
	if c.Height == 0 {
		c.Height = 96
	}
	if c.MinObjects == 0 {
		c.MinObjects = 1
	}
	if c.MaxObjects == 0 {
		c.MaxObjects = 4
	}
	if c.Captions == 0 {
		c.Captions = 5
	}
	if c.Texture == 0 {
		c.Texture = 6
	}
	return c
}

// Validate checks c after defaults are applied; the error names the field
// and its bound.
func (c Config) Validate() error {
	c = c.WithDefaults()
	switch {
	case c.Images < 0:
		return fmt.Errorf("%w: Images %d < 0", ErrInvalidConfig, c.Images)
	case c.Width < MinSide || c.Width > MaxSide:
		return fmt.Errorf("%w: Width %d outside [%d, %d]", ErrInvalidConfig, c.Width, MinSide, MaxSide)
	case c.Height < MinSide || c.Height > MaxSide:
		return fmt.Errorf("%w: Height %d outside [%d, %d]", ErrInvalidConfig, c.Height, MinSide, MaxSide)
	case c.MinObjects < 1:
		return fmt.Errorf("%w: MinObjects %d < 1", ErrInvalidConfig, c.MinObjects)
	case c.MaxObjects < c.MinObjects || c.MaxObjects > 4:
		return fmt.Errorf("%w: MaxObjects %d outside [MinObjects=%d, 4]", ErrInvalidConfig, c.MaxObjects, c.MinObjects)
	case c.Captions < 1 || c.Captions > 20:
		return fmt.Errorf("%w: Captions %d outside [1, 20]", ErrInvalidConfig, c.Captions)
	case c.Texture > 40:
		return fmt.Errorf("%w: Texture %d > 40", ErrInvalidConfig, c.Texture)
	}
	return nil
}

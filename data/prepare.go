package data

import "fmt"

// prepared is the outcome of one image task: an image of its own (copy
// mode) or pixels written straight into the batch buffer (direct mode).
type prepared struct {
	img *Image // copy mode only
	err error  // wraps ErrCorruptImage when the image could not be decoded
}

// decodeRGB decodes (or converts) the example's image.
func decodeRGB(e Example, cfg *Config) (*RGB, error) {
	var rgb *RGB
	if e.Image != nil {
		rgb = ToRGB(e.Image)
	} else {
		var err error
		if rgb, err = cfg.decoder().Decode(e.JPEG, cfg.Image.TargetSize); err != nil {
			return nil, fmt.Errorf("%s: %w", e.where(), err)
		}
	}
	if rgb.W < 1 || rgb.H < 1 {
		return nil, fmt.Errorf("%s: %w: empty image", e.where(), ErrCorruptImage)
	}
	return rgb, nil
}

// knownTarget returns the size the example's image will be resized to when
// it can be told before decoding: from the record's original size, or from
// an in-memory image's bounds. The target always comes from the original
// size, so a decoder's DCT downscaling never changes the output size.
func knownTarget(e Example, cfg *Config) (tw, th int, ok bool) {
	switch {
	case e.Meta != nil && e.Meta.Width > 0 && e.Meta.Height > 0:
		tw, th = cfg.Image.TargetSize(e.Meta.Width, e.Meta.Height)
		return tw, th, true
	case e.Image != nil && !e.Image.Bounds().Empty():
		tw, th = cfg.Image.TargetSize(e.Image.Bounds().Dx(), e.Image.Bounds().Dy())
		return tw, th, true
	}
	return 0, 0, false
}

// prepareImage decodes the example's image and returns it resized and
// normalised in a buffer of its own.
func prepareImage(e Example, cfg *Config) prepared {
	rgb, err := decodeRGB(e, cfg)
	if err != nil {
		return prepared{err: err}
	}
	tw, th, ok := knownTarget(e, cfg)
	if !ok {
		tw, th = cfg.Image.TargetSize(rgb.W, rgb.H)
	}
	img := ResizeNormalize(rgb, tw, th)
	putBytes(rgb.Pix)
	return prepared{img: img}
}

// prepareInto decodes the example's image and writes it resized and
// normalised into dst, a [3,H,W] batch row, padding zeroed.
func prepareInto(e Example, cfg *Config, dst []float32, tw, th, W, H int) prepared {
	rgb, err := decodeRGB(e, cfg)
	if err != nil {
		return prepared{err: err}
	}
	resizeNormalizeInto(rgb, tw, th, dst, W, H)
	putBytes(rgb.Pix)
	return prepared{}
}

// imageKey identifies an image inside a batch, so pairs of one image are
// decoded once: pairs share their image's record (PairsOf, ShardSource,
// PlanSource and SynthWorld hand out one *SampleMeta per image).
func imageKey(e Example) any { return e.Meta }

package synth

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
)

// JPEGQuality is the quality the exporters write: high enough that every
// palette colour decodes back to itself (see NearestColour).
const JPEGQuality = 92

// EncodeJPEG encodes img at JPEGQuality.
func EncodeJPEG(img image.Image) ([]byte, error) {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: JPEGQuality}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// NearestColour returns the name of the palette colour closest to c in RGB.
func NearestColour(c color.Color) string {
	r, g, b, _ := c.RGBA()
	best, bestD := "", int64(-1)
	for k, p := range Palette {
		dr, dg, db := int64(r>>8)-int64(p.R), int64(g>>8)-int64(p.G), int64(b>>8)-int64(p.B)
		if d := dr*dr + dg*dg + db*db; bestD < 0 || d < bestD {
			best, bestD = ColourNames[k], d
		}
	}
	return best
}

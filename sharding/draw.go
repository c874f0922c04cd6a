package sharding

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
)

// palette of box colours on inspection images.
var boxColours = []color.RGBA{
	{255, 0, 255, 255}, {0, 200, 255, 255}, {255, 120, 0, 255}, {0, 160, 0, 255},
	{255, 0, 0, 255}, {0, 0, 255, 255}, {120, 60, 0, 255}, {0, 0, 0, 255},
}

// DrawSample renders a sample for people: the image scaled so its longer
// side is at least 384 pixels, every object box with its class and
// attributes, and the texts listed beneath.
func DrawSample(meta *SampleMeta, jpg []byte, classes, attributes []string) (*image.RGBA, error) {
	// A shard may come from anywhere: check the header before decoding.
	if _, _, err := checkImage(jpg, DefaultMaxImageSide, DefaultMaxImagePixels); err != nil {
		return nil, fmt.Errorf("sharding: %s.jpg: %w", meta.Key, err)
	}
	src, err := jpeg.Decode(bytes.NewReader(jpg))
	if err != nil {
		return nil, fmt.Errorf("sharding: decoding %s.jpg: %w", meta.Key, err)
	}
	sb := src.Bounds()
	scale := max(1, (384+max(sb.Dx(), sb.Dy())-1)/max(sb.Dx(), sb.Dy()))
	w, h := sb.Dx()*scale, sb.Dy()*scale
	lines := []string{fmt.Sprintf("%s  %s  %dx%d  %d texts  %d objects", meta.Key, meta.Source, meta.Width, meta.Height, len(meta.Texts), len(meta.Objects))}
	for i, t := range meta.Texts {
		if i == 12 {
			lines = append(lines, fmt.Sprintf("... %d more", len(meta.Texts)-i))
			break
		}
		lines = append(lines, fmt.Sprintf("%s: %s", t.Kind, t.Text))
	}
	const pad = 4
	out := image.NewRGBA(image.Rect(0, 0, max(w, 640), h+pad+len(lines)*glyphH+pad))
	draw.Draw(out, out.Bounds(), image.NewUniform(color.RGBA{255, 255, 255, 255}), image.Point{}, draw.Src)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			out.Set(x, y, src.At(sb.Min.X+x/scale, sb.Min.Y+y/scale))
		}
	}
	for i, o := range meta.Objects {
		c := boxColours[i%len(boxColours)]
		x0, y0 := int((o.Box[0]-o.Box[2]/2)*float32(w)), int((o.Box[1]-o.Box[3]/2)*float32(h))
		x1, y1 := int((o.Box[0]+o.Box[2]/2)*float32(w)), int((o.Box[1]+o.Box[3]/2)*float32(h))
		for t := 0; t < 2; t++ {
			fillRect(out, image.Rect(x0, y0+t, x1, y0+t+1), c)
			fillRect(out, image.Rect(x0, y1-1-t, x1, y1-t), c)
			fillRect(out, image.Rect(x0+t, y0, x0+t+1, y1), c)
			fillRect(out, image.Rect(x1-1-t, y0, x1-t, y1), c)
		}
		label := name(classes, o.Class)
		for _, a := range o.Attributes {
			label = name(attributes, a) + " " + label
		}
		ly := max(0, y0-glyphH)
		fillRect(out, image.Rect(x0, ly, x0+len(label)*glyphW+2, ly+glyphH), color.RGBA{255, 255, 255, 255})
		drawText(out, x0+1, ly+1, label, c, 1)
	}
	for i, l := range lines {
		drawText(out, pad, h+pad+i*glyphH, l, color.RGBA{0, 0, 0, 255}, 1)
	}
	return out, nil
}

func name(vocab []string, i int) string {
	if i >= 0 && i < len(vocab) {
		return vocab[i]
	}
	return fmt.Sprintf("#%d", i)
}

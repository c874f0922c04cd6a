package eval

import (
	"errors"
	"image/png"
	"os"
	"sort"

	"github.com/e2evlp/vlp/data"
	"github.com/e2evlp/vlp/model"
	"github.com/e2evlp/vlp/sharding"
	"github.com/e2evlp/vlp/synth"
)

// BoxScore is the least class probability of a drawn prediction.
const BoxScore = 0.5

// confident are the detections with class probability ≥ BoxScore, or, when
// there is none, the three most probable (an early model is unsure).
func confident(objs []model.ObjectDetection) []model.ObjectDetection {
	var out []model.ObjectDetection
	for _, o := range objs {
		if o.Score >= BoxScore {
			out = append(out, o)
		}
	}
	if len(out) > 0 {
		return out
	}
	out = append(out, objs...)
	sort.Slice(out, func(i, j int) bool { return out[i].Score > out[j].Score })
	return out[:min(3, len(out))]
}

// drawPredictions writes a held-out image with the model's confident
// detections (class, top attribute) drawn on it and the true caption
// beneath, as a PNG. size is the image's un-padded width and height in the
// model's pixels (the detections' unit).
func drawPredictions(path string, e data.Example, objs []model.ObjectDetection, set *Set, size [2]int) error {
	jpg := e.JPEG
	if jpg == nil {
		if e.Image == nil {
			return errors.New("the held-out example has no image")
		}
		var err error
		if jpg, err = synth.EncodeJPEG(e.Image); err != nil {
			return err
		}
	}
	w, h := float64(size[0]), float64(size[1])
	meta := &sharding.SampleMeta{Key: "predicted", Source: "held-out", Width: e.Meta.Width, Height: e.Meta.Height,
		Texts: []sharding.Text{{Kind: "truth", Text: e.Meta.Texts[e.Text].Text}}}
	for _, o := range confident(objs) {
		cx := model.XyxyToCxcywh(model.Box{o.Box[0] / w, o.Box[1] / h, o.Box[2] / w, o.Box[3] / h})
		meta.Objects = append(meta.Objects, sharding.Object{
			Box: [4]float32{float32(cx[0]), float32(cx[1]), float32(cx[2]), float32(cx[3])}, Class: o.Class, Attributes: o.Attributes[:min(1, len(o.Attributes))]})
	}
	img, err := sharding.DrawSample(meta, jpg, set.Classes, set.Attributes)
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

package model

import (
	"errors"
	"fmt"

	"github.com/e2evlp/vlp/torch"
)

// ObjectDetection is one detected object in pixel coordinates of the
// un-padded image.
type ObjectDetection struct {
	Score      float64 // probability of Class
	Class      int
	Attributes []int // the attribute ids, most likely first (top AttrTopK)
	Box        Box   // x0, y0, x1, y1 in pixels
}

// AttrTopK is how many attributes PostProcess reports per object.
const AttrTopK = 2

// imageSize returns the un-padded height and width of row i from the
// pixel mask (padding is bottom/right).
func imageSize(in *Inputs, i int) (h, w int) {
	m := in.PixelMask[i*in.H*in.W : (i+1)*in.H*in.W]
	for h = 0; h < in.H && !m[h*in.W]; h++ {
	}
	for w = 0; w < in.W && !m[w]; w++ {
	}
	return h, w
}

// PostProcess turns the last decoder layer into detections: per query the
// most likely real class (no-object excluded) and its probability, the
// top attributes, and the box in pixels. Every query is returned (sorted
// by nothing: query order); callers threshold on Score.
func (m *Model) PostProcess(s *torch.Scope, in *Inputs, det DetectionOutput) ([][]ObjectDetection, error) {
	c := m.Config
	ly := int64(c.DecoderLayers)
	last := func(t *torch.Tensor) *torch.Tensor { return t.Select(0, ly-1) }
	prob := last(det.Logits).Softmax(-1)                                                      // [B,Q,C+1]
	real := prob.Narrow(2, 0, int64(c.NumClasses))                                            // [B,Q,C]
	score, label := real.MaxWithIndices(-1, false)                                            // [B,Q], [B,Q]
	_, attrTop := last(det.Attrs).Topk(int64(min(AttrTopK, c.NumAttributes)), -1, true, true) // [B,Q,k]
	sc, err1 := score.ToDtype(torch.Float32).Float32s()                                       // [B·Q]
	lb, err2 := label.Int64s()                                                                // [B·Q]
	at, err3 := attrTop.Int64s()                                                              // [B·Q·k]
	bx, err4 := last(det.Boxes).ToDtype(torch.Float32).Float32s()                             // [B·Q·4]
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return nil, fmt.Errorf("model: postprocess: %w", err)
	}
	k := min(AttrTopK, c.NumAttributes)
	q := c.NumQueries
	out := make([][]ObjectDetection, in.B)
	for i := range out {
		h, w := imageSize(in, i)
		for j := 0; j < q; j++ {
			o := i*q + j
			xy := CxcywhToXyxy(Box{float64(bx[o*4]), float64(bx[o*4+1]), float64(bx[o*4+2]), float64(bx[o*4+3])})
			d := ObjectDetection{Score: float64(sc[o]), Class: int(lb[o]),
				Box: Box{xy[0] * float64(w), xy[1] * float64(h), xy[2] * float64(w), xy[3] * float64(h)}}
			for a := 0; a < k; a++ {
				d.Attributes = append(d.Attributes, int(at[o*k+a]))
			}
			out[i] = append(out[i], d)
		}
	}
	return out, nil
}

// ITMScores are the probabilities that each row's text describes its image.
func (m *Model) ITMScores(out *Outputs) []float64 {
	p, _ := out.ITMLogits.Softmax(-1).Narrow(1, 1, 1).ToDtype(torch.Float32).Float32s() // [B,1]
	r := make([]float64, len(p))
	for i, v := range p {
		r[i] = float64(v)
	}
	return r
}

// visual runs the visual side only (backbone and the image-only encoder
// pass) with no gradient and returns the memory the decoders read.
func (m *Model) visual(s *torch.Scope, in *Inputs) (memory, error) {
	f := &fwd{s: s}
	img, pos, imgPad := m.imageTokens(f, in)
	return m.visualMemory(f, in, img, pos, imgPad), s.Err()
}

// GenerateCaptions writes a caption per row greedily (argmax at every
// step) from start until end or maxLen tokens; the returned ids exclude
// start and end. The encoder's image-only pass runs once; each step reruns
// the caption decoder over the prefix (T is small).
func (m *Model) GenerateCaptions(s *torch.Scope, in *Inputs, start, end int64, maxLen int) ([][]int64, error) {
	var out [][]int64
	var err error
	torch.NoGrad(func() {
		var mem memory
		mem, err = m.visual(s, in)
		if err != nil {
			return
		}
		f := &fwd{s: s}
		b := in.B
		maxLen = min(maxLen, m.Config.MaxCaptionLen)
		seqs := make([][]int64, b)
		done := make([]bool, b)
		ids := make([]int64, b) // [B,t] row-major, grows by one column per step
		for i := range ids {
			ids[i] = start
		}
		for t := 1; t <= maxLen; t++ {
			x := torch.FromInt64(s, ids, []int64{int64(b), int64(t)}, m.Device)                                     // [B,t]
			logits := m.captionLogits(f, x, torch.Zeros(s, []int64{int64(b), int64(t)}, torch.Bool, m.Device), mem) // [B,t,V]
			next := logits.Select(1, int64(t-1)).Argmax(-1, false)                                                  // [B]
			var nx []int64
			if nx, err = next.Int64s(); err != nil {
				return
			}
			grown := make([]int64, 0, b*(t+1))
			all := true
			for i := 0; i < b; i++ {
				grown = append(grown, ids[i*t:(i+1)*t]...)
				grown = append(grown, nx[i])
				if !done[i] {
					if nx[i] == end {
						done[i] = true
					} else {
						seqs[i] = append(seqs[i], nx[i])
					}
				}
				all = all && done[i]
			}
			ids = grown
			if all {
				break
			}
		}
		out = seqs
	})
	return out, err
}

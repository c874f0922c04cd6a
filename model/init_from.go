package model

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// ErrInitShape: a pretraining checkpoint's tensor has another shape than
// the fine-tuning model's parameter of the same name.
var ErrInitShape = errors.New("model: init from pretrained: shape mismatch")

// InitReport says what InitFromPretrained did.
type InitReport struct {
	Loaded []string // parameters and buffers copied from the checkpoint, in Params order
	New    []string // parameters and buffers absent from it, kept as initialised, in Params order
	Unused []string // checkpoint tensors the model has no parameter for, sorted
}

// String is a one-line summary, naming the new parameters.
func (r InitReport) String() string {
	return fmt.Sprintf("%d loaded from the checkpoint, %d new [%s], %d of the checkpoint unused",
		len(r.Loaded), len(r.New), strings.Join(r.New, " "), len(r.Unused))
}

// InitFromPretrained initialises a fine-tuning model — params, usually
// TaskParams(m, head) — from a pretraining checkpoint's parameters (name →
// host tensor, as ReadStateDict or a checkpoint snapshot gives them):
// every parameter or buffer whose name is in ckpt is overwritten with the
// checkpoint's values, bit for bit; the others (a new head) keep their
// initialisation and are reported as New. A name present on both sides
// with different shapes is refused (ErrInitShape, every such name listed)
// before anything is copied, so a refused call leaves params untouched.
// A tensor whose data does not fill its shape is refused the same way.
func InitFromPretrained(params []*Param, ckpt map[string]HostTensor) (InitReport, error) {
	var rep InitReport
	var bad []string
	have := make(map[string]bool, len(params))
	for _, p := range params {
		have[p.Name] = true
		h, ok := ckpt[p.Name]
		if !ok {
			rep.New = append(rep.New, p.Name)
			continue
		}
		switch {
		case !sameShape(h.Shape, p.Shape):
			bad = append(bad, fmt.Sprintf("%s: %v in the checkpoint, %v in the model", p.Name, h.Shape, p.Shape))
		case len(h.Data) != numel(h.Shape):
			bad = append(bad, fmt.Sprintf("%s: %d values in the checkpoint for shape %v", p.Name, len(h.Data), h.Shape))
		default:
			rep.Loaded = append(rep.Loaded, p.Name)
		}
	}
	if len(bad) > 0 {
		return InitReport{}, fmt.Errorf("%w: %d tensors: %s", ErrInitShape, len(bad), strings.Join(bad, "; "))
	}
	for name := range ckpt {
		if !have[name] {
			rep.Unused = append(rep.Unused, name)
		}
	}
	sort.Strings(rep.Unused)
	byName := make(map[string]*Param, len(params))
	for _, p := range params {
		byName[p.Name] = p
	}
	for _, name := range rep.Loaded {
		p := byName[name]
		if err := copyHost(p.T, ckpt[name], p.T.Device()); err != nil {
			return rep, fmt.Errorf("model: init from pretrained: copy %s: %w", name, err)
		}
	}
	return rep, nil
}

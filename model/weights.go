package model

import (
	"fmt"
	"sort"
	"strings"

	"github.com/e2evlp/vlp/torch"
)

// LoadResNet copies a torchvision ResNet state dict (a .pth file written by
// torch.save(model.state_dict())) into the backbone, read in pure Go (no
// LibTorch pickle). Every backbone tensor must be present with its exact
// shape; the classifier (fc.*) and num_batches_tracked are ignored. It
// returns the number of tensors loaded.
func (m *Model) LoadResNet(path string) (int, error) {
	sd, err := ReadStateDict(path)
	if err != nil {
		return 0, err
	}
	return m.LoadBackboneState(sd)
}

// LoadBackboneState is LoadResNet on an already read state dict.
func (m *Model) LoadBackboneState(sd map[string]HostTensor) (int, error) {
	var missing []string
	n := 0
	for _, p := range m.params {
		name, ok := strings.CutPrefix(p.Name, "backbone.")
		if !ok {
			continue
		}
		h, ok := sd[name]
		if !ok {
			missing = append(missing, name)
			continue
		}
		if !sameShape(h.Shape, p.T.Shape()) {
			return n, fmt.Errorf("%w: %s: shape %v in the file, %v in the model (ResNetDepth %d, ResNetWidth %d)",
				ErrStateDict, name, h.Shape, p.T.Shape(), m.Config.ResNetDepth, m.Config.ResNetWidth)
		}
		if err := copyHost(p.T, h, m.Device); err != nil {
			return n, fmt.Errorf("%w: %s: %v", ErrStateDict, name, err)
		}
		n++
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return n, fmt.Errorf("%w: %d backbone tensors missing from the file, e.g. %s", ErrStateDict, len(missing), missing[0])
	}
	return n, nil
}

// copyHost overwrites an owned tensor's values in place (no autograd).
func copyHost(dst *torch.Tensor, h HostTensor, dev torch.Device) error {
	s := torch.NewScope()
	defer s.Close()
	src := torch.FromFloat32(s, h.Data, h.Shape, dev)
	return dst.CopyFrom(src)
}

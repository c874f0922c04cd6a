package eval

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/e2evlp/vlp/checkpoint"
	"github.com/e2evlp/vlp/model"
	"github.com/e2evlp/vlp/torch"
)

// RestoreParams copies a checkpoint's parameters (and buffers: BatchNorm
// statistics) into m, which must have been built with the configuration
// of the job that wrote it. Every parameter of m must be in the snapshot
// as float32 of the same shape; the optimizer state is not read.
func RestoreParams(m *model.Model, snap *checkpoint.Snapshot) error {
	if snap == nil {
		return fmt.Errorf("eval: restore: no snapshot")
	}
	if err := m.Config.CheckLayout(snap.Meta.Layout); err != nil {
		return fmt.Errorf("eval: restore: %w", err)
	}
	for _, p := range m.Params() {
		t, ok := snap.Find(checkpoint.GroupParams, p.Name)
		if !ok {
			return fmt.Errorf("eval: restore: the checkpoint has no parameter %q (was it written by another preset?)", p.Name)
		}
		if t.DType != checkpoint.Float32 || !slices.Equal(t.Shape, p.Shape) {
			return fmt.Errorf("eval: restore: parameter %q is %s %v in the checkpoint, the model's is float32 %v", p.Name, t.DType, t.Shape, p.Shape)
		}
		buf := make([]float32, len(t.Data)/4)
		for i := range buf {
			buf[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*i:]))
		}
		if err := torch.UnflattenParams([]*torch.Tensor{p.T}, buf); err != nil {
			return fmt.Errorf("eval: restore %q: %w", p.Name, err)
		}
	}
	return nil
}

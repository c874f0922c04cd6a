package model

import (
	"errors"
	"fmt"

	"github.com/e2evlp/vlp/data"
	"github.com/e2evlp/vlp/torch"
)

// ErrBatch: a batch whose fields do not fit its sizes.
var ErrBatch = errors.New("model: bad batch")

// Inputs is a batch on the device, plus the host data the matcher and the
// position encoding read. Every tensor lives in the scope given to
// BatchToTensors.
type Inputs struct {
	B, H, W, L, T int

	Images    *torch.Tensor // [B,3,H,W] float32
	PixelMask []bool        // [B,H,W] host, true on padding

	TokenIDs *torch.Tensor // [B,L] int64
	TokenPad *torch.Tensor // [B,L] bool, true on padding

	NumMasked  int           // M: positions with an MLM label
	MLMIndex   *torch.Tensor // [M] int64, flat b·L+l
	MLMTargets *torch.Tensor // [M] int64
	MLMLabels  []int64       // [M] host copy (evaluation)

	ITMLabels *torch.Tensor // [B] int64

	CapIn     *torch.Tensor // [B,T-1] int64 decoder input (caption[:, :-1])
	CapInPad  *torch.Tensor // [B,T-1] bool
	CapTarget *torch.Tensor // [B,T-1] int64 next tokens, IgnoreIndex on padding

	Targets []data.DetectionTarget // host, one per row
}

// BatchToTensors checks a batch's sizes and uploads it to dev; every
// tensor is owned by s.
func BatchToTensors(s *torch.Scope, b *data.Batch, dev torch.Device) (*Inputs, error) {
	B, H, W, L, T := b.Size, b.Height, b.Width, b.SeqLen, b.CapLen
	switch {
	case B < 1 || H < 1 || W < 1 || L < 1 || T < 2:
		return nil, fmt.Errorf("%w: sizes B=%d H=%d W=%d L=%d T=%d", ErrBatch, B, H, W, L, T)
	case len(b.Images) != B*3*H*W || len(b.PixelMask) != B*H*W:
		return nil, fmt.Errorf("%w: images %d / mask %d values for [%d,3,%d,%d]", ErrBatch, len(b.Images), len(b.PixelMask), B, H, W)
	case len(b.TokenIDs) != B*L || len(b.TokenMask) != B*L || len(b.MLMLabels) != B*L:
		return nil, fmt.Errorf("%w: text fields do not hold B·L = %d values", ErrBatch, B*L)
	case len(b.ITMLabels) != B || len(b.Targets) != B:
		return nil, fmt.Errorf("%w: %d ITM labels, %d targets for %d rows", ErrBatch, len(b.ITMLabels), len(b.Targets), B)
	case len(b.CaptionIDs) != B*T || len(b.CaptionMask) != B*T:
		return nil, fmt.Errorf("%w: caption fields do not hold B·T = %d values", ErrBatch, B*T)
	}
	for i, t := range b.Targets {
		if len(t.Classes) != len(t.Boxes) || (t.Attributes != nil && len(t.Attributes) != len(t.Boxes)) {
			return nil, fmt.Errorf("%w: row %d: %d boxes, %d classes, %d attribute lists", ErrBatch, i, len(t.Boxes), len(t.Classes), len(t.Attributes))
		}
	}
	in := &Inputs{B: B, H: H, W: W, L: L, T: T, PixelMask: b.PixelMask, Targets: b.Targets}
	i64 := func(v []int64, shape ...int64) *torch.Tensor { return torch.FromInt64(s, v, shape, dev) }
	in.Images = torch.FromFloat32(s, b.Images, []int64{int64(B), 3, int64(H), int64(W)}, dev)
	in.TokenIDs = i64(b.TokenIDs, int64(B), int64(L))
	in.TokenPad = torch.FromBool(s, b.TokenMask, []int64{int64(B), int64(L)}, dev)
	var idx, lab []int64
	for k, l := range b.MLMLabels {
		if l != data.IgnoreIndex {
			idx, lab = append(idx, int64(k)), append(lab, l)
		}
	}
	in.NumMasked, in.MLMLabels = len(idx), lab
	if len(idx) > 0 {
		in.MLMIndex = i64(idx, int64(len(idx)))
		in.MLMTargets = i64(lab, int64(len(lab)))
	}
	in.ITMLabels = i64(b.ITMLabels, int64(B))
	capIn := make([]int64, 0, B*(T-1))
	capPad := make([]bool, 0, B*(T-1))
	capTgt := make([]int64, 0, B*(T-1))
	for r := 0; r < B; r++ {
		row, pad := b.CaptionIDs[r*T:(r+1)*T], b.CaptionMask[r*T:(r+1)*T]
		capIn, capPad = append(capIn, row[:T-1]...), append(capPad, pad[:T-1]...)
		for j := 1; j < T; j++ {
			if pad[j] {
				capTgt = append(capTgt, data.IgnoreIndex)
			} else {
				capTgt = append(capTgt, row[j])
			}
		}
	}
	in.CapIn = i64(capIn, int64(B), int64(T-1))
	in.CapInPad = torch.FromBool(s, capPad, []int64{int64(B), int64(T - 1)}, dev)
	in.CapTarget = i64(capTgt, int64(B), int64(T-1))
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("model: upload batch: %w", err)
	}
	return in, nil
}

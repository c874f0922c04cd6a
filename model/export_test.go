package model

import (
	"testing"

	"github.com/e2evlp/vlp/data"
	"github.com/e2evlp/vlp/torch"
)

// Hooks for the external tests (package model_test): they train through package train's
// engine, which imports this package, so they cannot live in it.

func NeedTorch(t testing.TB) { needTorch(t) }

func Int64s(t *testing.T, x *torch.Tensor) []int64 { return int64s(t, x) }

func ParityConfig() Config { return parityConfig() }

func SynthBatch(t *testing.T, images, rows, side int, seed uint64) *data.Batch {
	return synthBatch(t, images, rows, side, seed)
}

func NaN() float64 { return nan() }

package model

import (
	"math"
	"testing"

	"github.com/e2evlp/vlp/data"
	"github.com/e2evlp/vlp/torch"
)

// channelsLastStep is what one training step of a fresh tiny model leaves: its losses, every
// trainable parameter's gradient and every BatchNorm running statistic, by name.
type channelsLastStep struct {
	losses map[string]float64
	values map[string][]float32 // gradients (name+".grad") and buffers
}

// TestChannelsLastSameStep: Config.ChannelsLast changes the backbone's memory layout, not its
// function. One training step of the tiny model (BatchNorm on batch statistics, every stage
// trained) gives the same losses, gradients and running statistics with and without it, within
// float32 rounding; the layout does reach C5, and the gradients stay laid out as their
// (contiguous) parameters.
func TestChannelsLastSameStep(t *testing.T) {
	needTorch(t)
	b := synthBatch(t, 8, 4, 64, 2)
	want := channelsLastRun(t, b, false)
	got := channelsLastRun(t, b, true)
	if len(got.losses) != len(want.losses) {
		t.Fatalf("losses %v with channels-last, %v without", got.losses, want.losses)
	}
	for name, w := range want.losses {
		if g := got.losses[name]; math.Abs(g-w) > 1e-4*math.Max(math.Abs(w), 1e-3) {
			t.Errorf("loss %s: %.7g channels-last, %.7g without", name, g, w)
		}
	}
	if len(got.values) != len(want.values) {
		t.Fatalf("%d gradients and buffers channels-last, %d without", len(got.values), len(want.values))
	}
	for name, w := range want.values {
		g := got.values[name]
		if len(g) != len(w) {
			t.Errorf("%s: %d values channels-last, %d without", name, len(g), len(w))
			continue
		}
		// Within 1e-3 of the tensor's largest magnitude: convolutions in another layout sum in
		// another order, and backward through the encoder amplifies that rounding (1.3e-4 of the
		// largest at most, measured: the encoder's FFN gradients; the backbone's 2.5e-5).
		scale := 0.0
		for _, v := range w {
			scale = math.Max(scale, math.Abs(float64(v)))
		}
		for i := range w {
			if d := math.Abs(float64(g[i]) - float64(w[i])); d > 1e-3*scale+1e-7 {
				t.Errorf("%s[%d]: %.7g channels-last, %.7g without (largest %.3g)", name, i, g[i], w[i], scale)
				break
			}
		}
	}
}

// channelsLastRun builds the tiny model (seed 3) with or without ChannelsLast, checks the layout
// of C5, and runs one training step on b.
func channelsLastRun(t *testing.T, b *data.Batch, channelsLast bool) channelsLastStep {
	t.Helper()
	c := Tiny()
	c.VocabSize = data.SynthVocabSize
	c.ChannelsLast = channelsLast
	m, err := New(c, 3, torch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s := torch.NewScope()
	defer s.Close()
	in, err := BatchToTensors(s, b, torch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	c5 := m.Backbone.forward(&fwd{s: s}, in.Images) // [B,C5,h,w], running statistics (eval)
	if err := c5.Err(); err != nil {
		t.Fatal(err)
	}
	if c5.IsContiguous() == channelsLast {
		t.Errorf("ChannelsLast %v: C5 is contiguous %v", channelsLast, c5.IsContiguous())
	}
	r, err := TrainStep(s, m, b, nil)
	if err != nil {
		t.Fatalf("ChannelsLast %v: %v", channelsLast, err)
	}
	out := channelsLastStep{losses: r.Losses, values: map[string][]float32{}}
	for _, p := range m.Params() {
		switch {
		case p.Buffer:
			v, err := p.T.Float32s()
			if err != nil {
				t.Fatal(err)
			}
			out.values[p.Name] = v
		case p.Trainable():
			g := p.T.Grad()
			if g == nil {
				continue
			}
			if !g.IsContiguous() {
				t.Errorf("ChannelsLast %v: the gradient of %s is not contiguous", channelsLast, p.Name)
			}
			v, err := g.Float32s()
			g.Close()
			if err != nil {
				t.Fatal(err)
			}
			out.values[p.Name+".grad"] = v
		}
	}
	return out
}

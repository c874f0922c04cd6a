package model

import (
	"errors"
	"runtime"
	"testing"

	"github.com/e2evlp/vlp/torch"
)

// TestForwardShapes checks every output's shape on a padded batch, for
// the stride-32 backbone, the dilated one, and either without the stem's
// max-pool (a feature size that disagrees with the backbone's map fails
// the forward pass: the positions would not match the image tokens).
func TestForwardShapes(t *testing.T) {
	needTorch(t)
	for _, v := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
		dilate, noPool := v[0], v[1]
		c := parityConfig()
		c.DilateC5, c.NoStemPool = dilate, noPool
		m, err := New(c, 1, torch.CPU)
		if err != nil {
			t.Fatal(err)
		}
		b := synthBatch(t, 8, 4, 96, 1)
		s := torch.NewScope()
		in, err := BatchToTensors(s, b, torch.CPU)
		if err != nil {
			t.Fatal(err)
		}
		out, err := m.Forward(s, in, true, nil)
		if err != nil {
			t.Fatal(err)
		}
		B, Q, Ly := int64(b.Size), int64(c.NumQueries), int64(c.DecoderLayers)
		for _, tc := range []struct {
			name string
			t    *torch.Tensor
			want []int64
		}{
			{"mlm", out.MLMLogits, []int64{int64(in.NumMasked), int64(c.VocabSize)}},
			{"itm", out.ITMLogits, []int64{B, 2}},
			{"class", out.Det.Logits, []int64{Ly, B, Q, int64(c.NumClasses + 1)}},
			{"attr", out.Det.Attrs, []int64{Ly, B, Q, int64(c.NumAttributes)}},
			{"boxes", out.Det.Boxes, []int64{Ly, B, Q, 4}},
			{"caption", out.CapLogits, []int64{B, int64(b.CapLen - 1), int64(c.VocabSize)}},
		} {
			if got := tc.t.Detach().Shape(); !sameShape(got, tc.want) {
				t.Errorf("dilate %v, no stem pool %v: %s shape %v, want %v", dilate, noPool, tc.name, got, tc.want)
			}
		}
		stride := 32
		if dilate {
			stride /= 2
		}
		if noPool {
			stride /= 2
		}
		if want := 96 / stride; m.featureSize(96) != want {
			t.Errorf("dilate %v, no stem pool %v: featureSize(96) = %d, want %d", dilate, noPool, m.featureSize(96), want)
		}
		s.Close()
		m.Close()
	}
}

func nan() float64 { var z float64; return z / z }

func TestBatchToTensorsRejectsBadBatch(t *testing.T) {
	needTorch(t)
	b := synthBatch(t, 8, 4, 64, 2)
	bad := *b
	bad.TokenIDs = bad.TokenIDs[:len(bad.TokenIDs)-1]
	s := torch.NewScope()
	defer s.Close()
	if _, err := BatchToTensors(s, &bad, torch.CPU); !errors.Is(err, ErrBatch) {
		t.Fatalf("err = %v, want ErrBatch", err)
	}
}

// TestInference runs post-processing and greedy captioning on an untrained
// model: shapes and bounds only (what it says is the learning test's job).
func TestInference(t *testing.T) {
	needTorch(t)
	c := parityConfig()
	m, err := New(c, 1, torch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	b := synthBatch(t, 8, 3, 64, 2)
	s := torch.NewScope()
	defer s.Close()
	in, err := BatchToTensors(s, b, torch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	var out *Outputs
	torch.NoGrad(func() { out, err = m.Forward(s, in, false, nil) })
	if err != nil {
		t.Fatal(err)
	}
	dets, err := m.PostProcess(s, in, out.Det)
	if err != nil {
		t.Fatal(err)
	}
	if len(dets) != b.Size {
		t.Fatalf("%d rows of detections, want %d", len(dets), b.Size)
	}
	for _, row := range dets {
		if len(row) != c.NumQueries {
			t.Fatalf("%d detections, want one per query (%d)", len(row), c.NumQueries)
		}
		for _, d := range row {
			if d.Score < 0 || d.Score > 1 || d.Class < 0 || d.Class >= c.NumClasses || len(d.Attributes) != AttrTopK {
				t.Fatalf("bad detection %+v", d)
			}
			for _, v := range d.Box {
				if v < -32 || v > 96 { // normalised box in (0,1) scaled by 64 px, centre ± half size
					t.Fatalf("box %v outside the image's reach", d.Box)
				}
			}
		}
	}
	scores := m.ITMScores(out)
	if len(scores) != b.Size {
		t.Fatalf("%d ITM scores", len(scores))
	}
	caps, err := m.GenerateCaptions(s, in, 2, 3, 6)
	if err != nil {
		t.Fatal(err)
	}
	if len(caps) != b.Size {
		t.Fatalf("%d captions", len(caps))
	}
	for _, cp := range caps {
		if len(cp) > 6 {
			t.Fatalf("caption of %d tokens, max 6", len(cp))
		}
	}
}

// TestTrainStepReadsTheHostTwice: a training step reads values to the host twice — the matcher's
// probabilities and boxes in one copy, the losses in another — in fp32 and under bf16 autocast:
// on a GPU each read waits for the device, so the count is part of the step's contract.
func TestTrainStepReadsTheHostTwice(t *testing.T) {
	needTorch(t)
	runtime.LockOSThread() // the count is per OS thread
	defer runtime.UnlockOSThread()
	m, err := New(parityConfig(), 1, torch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	gen, err := torch.NewGenerator(1, torch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer gen.Close()
	b := synthBatch(t, 8, 4, 64, 2)
	for _, bf16 := range []bool{false, true} {
		tc := DefaultTrainConfig(10)
		tc.BF16 = bf16
		s := torch.NewScope()
		before := torch.HostReads()
		r, err := tc.TrainStep(s, m, b, gen)
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got := torch.HostReads() - before; r.HostReads != 2 || got != 2 {
			t.Errorf("bf16 %v: the step reports %d host reads and made %d, want 2", bf16, r.HostReads, got)
		}
	}
}

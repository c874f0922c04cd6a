package model_test

import (
	"github.com/e2evlp/vlp/model"
	"github.com/e2evlp/vlp/train"
	"testing"
	"time"

	"github.com/e2evlp/vlp/data"
	"github.com/e2evlp/vlp/synth"
	"github.com/e2evlp/vlp/torch"
)

// BenchmarkTinyTrainStep times a full training step of the tiny preset on
// CPU (batch 32, 64 px shapes) and reports its split: forward (criterion
// and matcher included), matcher alone, backward, optimiser.
//
//	go test ./model -run '^$' -bench TinyTrainStep -benchtime 20x
func BenchmarkTinyTrainStep(b *testing.B) {
	model.NeedTorch(b)
	ls := defaultLearnSetup()
	world, err := data.NewSynthWorld(synth.Config{Seed: 101, Images: 256, Width: ls.side, Height: ls.side, MaxObjects: 2}, false)
	if err != nil {
		b.Fatal(err)
	}
	batches, err := world.Batches(learnDataConfig(ls))
	if err != nil {
		b.Fatal(err)
	}
	m, err := model.New(model.Tiny(), 1, torch.CPU)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	tc := model.DefaultTrainConfig(1000)
	tr, err := train.NewEngine(m, tc)
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	for i := 0; i < 3; i++ { // warm-up: allocator, thread pool
		if _, err := tr.Step(batches[i%len(batches)]); err != nil {
			b.Fatal(err)
		}
	}
	var fwd, match, bwd, opt, total time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		mt, err := tr.Step(batches[i%(len(batches)-1)])
		if err != nil {
			b.Fatal(err)
		}
		fwd += mt.Forward
		match += mt.Matcher
		bwd += mt.Backward
		opt += mt.Optimizer
		total += mt.Total
	}
	n := float64(b.N)
	b.ReportMetric(float64(total.Milliseconds())/n, "ms/step")
	b.ReportMetric(float64(ls.batch)*n/total.Seconds(), "samples/s")
	b.ReportMetric(100*match.Seconds()/total.Seconds(), "%matcher")
	b.ReportMetric(100*fwd.Seconds()/total.Seconds(), "%forward")
	b.ReportMetric(100*bwd.Seconds()/total.Seconds(), "%backward")
	b.ReportMetric(100*opt.Seconds()/total.Seconds(), "%optimizer")
}

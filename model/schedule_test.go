package model

import (
	"math"
	"testing"
)

func TestScheduleFactor(t *testing.T) {
	s := Schedule{Warmup: 10, Total: 110, MinRatio: 0.1}
	tests := []struct {
		step int
		want float64
	}{
		{0, 0.1}, {4, 0.5}, {9, 1}, {10, 1}, {60, 0.55}, {110, 0.1}, {500, 0.1},
	}
	for _, tc := range tests {
		if got := s.Factor(tc.step); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("Factor(%d) = %v, want %v", tc.step, got, tc.want)
		}
	}
	prev := 2.0
	for step := 10; step <= 110; step++ {
		f := s.Factor(step)
		if f > prev+1e-12 {
			t.Fatalf("decay not monotone at %d: %v > %v", step, f, prev)
		}
		prev = f
	}
	if err := (Schedule{Warmup: 5, Total: 2}).Validate(); err == nil {
		t.Fatal("Total < Warmup accepted")
	}
}

func TestConfigValidate(t *testing.T) {
	for _, name := range PresetNames() {
		c, err := Preset(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); err != nil {
			t.Errorf("preset %s: %v", name, err)
		}
	}
	if _, err := Preset("huge"); err == nil {
		t.Error("unknown preset accepted")
	}
	bad := []func(*Config){
		func(c *Config) { c.Heads = 12 }, // the slides' 12 does not divide 256
		func(c *Config) { c.ResNetDepth = 42 },
		func(c *Config) { c.Dropout = 1 },
		func(c *Config) { c.NumQueries = 0 },
		func(c *Config) { c.Loss.NoObject = 2 },
		func(c *Config) { c.Loss.GIoU = -1 },
		func(c *Config) { c.TrainableStages = 5 },
	}
	for i, f := range bad {
		c := Base()
		f(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("case %d: invalid config accepted", i)
		}
	}
}

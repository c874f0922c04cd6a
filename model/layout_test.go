package model

import (
	"strings"
	"testing"
)

func TestLayout(t *testing.T) {
	tiny := Tiny()
	// Training-only fields do not change the layout.
	trained := tiny
	trained.Dropout, trained.Loss.Class, trained.TrainableStages = 0.3, 9, 1
	if trained.Layout() != tiny.Layout() {
		t.Errorf("dropout, loss weights or trainable stages changed the layout")
	}
	// The memory layout of the activations does not either, and leaves the layout's JSON as it
	// was before the field existed (checkpoints record that string).
	nhwc := tiny
	nhwc.ChannelsLast = true
	if nhwc.Layout() != tiny.Layout() || strings.Contains(tiny.Layout(), "ChannelsLast") {
		t.Errorf("ChannelsLast is in the layout: %s", nhwc.Layout())
	}
	// A change with the same parameter shapes does.
	pooled := tiny
	pooled.NoStemPool, pooled.DilateC5 = !tiny.NoStemPool, !tiny.DilateC5
	if pooled.Layout() == tiny.Layout() {
		t.Fatal("the stem pool and the dilated C5 are not in the layout")
	}
	if err := tiny.CheckLayout(tiny.Layout()); err != nil {
		t.Errorf("own layout refused: %v", err)
	}
	if err := tiny.CheckLayout(""); err != nil {
		t.Errorf("a checkpoint without a layout refused: %v", err)
	}
	err := tiny.CheckLayout(pooled.Layout())
	if err == nil || !strings.Contains(err.Error(), "another network") {
		t.Fatalf("another layout: %v", err)
	}
}

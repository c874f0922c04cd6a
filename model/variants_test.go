package model

import (
	"reflect"
	"strings"
	"testing"
)

func TestDepthVariants(t *testing.T) {
	// torchvision's ResNets without their 1000-way classifier (fc: 2048·1000
	// + 1000): the backbone component must hold exactly these.
	backbone := map[int]int64{50: 25_557_032 - 2_049_000, 101: 44_549_160 - 2_049_000, 152: 60_192_808 - 2_049_000}
	var encoder6, encoder12 int64
	for _, d := range []int{50, 101, 152} {
		for _, e := range []int{6, 12} {
			name := variantName(d, e)
			c, err := Preset(name)
			if err != nil {
				t.Fatal(err)
			}
			if c.ResNetDepth != d || c.EncoderLayers != e {
				t.Errorf("%s: ResNet-%d, %d encoder layers", name, c.ResNetDepth, c.EncoderLayers)
			}
			s, err := Describe(c)
			if err != nil {
				t.Fatal(err)
			}
			_, per, _, _ := s.Counts()
			if per["backbone"] != backbone[d] {
				t.Errorf("%s: backbone %d parameters, want torchvision's %d", name, per["backbone"], backbone[d])
			}
			if e == 6 {
				encoder6 = per["encoder"]
			} else {
				encoder12 = per["encoder"]
			}
		}
	}
	// Six more layers like the first six; both share the final LayerNorm
	// (weight and bias of width d).
	lnF := int64(2 * Base().DModel)
	if encoder12-encoder6 != encoder6-lnF {
		t.Errorf("encoder 12 has %d parameters, encoder 6 %d: want 6 more layers of the same size", encoder12, encoder6)
	}
	// The grid's corners are the paper's presets.
	if c, _ := Preset("r50-enc12"); !reflect.DeepEqual(c, Base()) {
		t.Error("r50-enc12 differs from base")
	}
	if c, _ := Preset("r152-enc12"); !reflect.DeepEqual(c, Large()) {
		t.Error("r152-enc12 differs from large")
	}
	names := strings.Join(PresetNames(), " ")
	for _, n := range VariantNames() {
		if !strings.Contains(names, n) {
			t.Errorf("PresetNames %q lacks %s", names, n)
		}
	}
	var sb strings.Builder
	if err := WriteVariants(&sb); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(sb.String()), "\n"); len(lines) != 7 || !strings.Contains(lines[3], "r101-enc6") ||
		!strings.Contains(lines[3], "ResNet-101") || !strings.Contains(lines[3], "42.50M") {
		t.Errorf("WriteVariants:\n%s", sb.String())
	}
}

package model

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// The paper's depth study (backbone and encoder depth) as presets: the
// base model with its ResNet at 50, 101 or 152 layers and its encoder at 6
// or 12 layers, named r<depth>-enc<layers>. r50-enc12 is base and
// r152-enc12 is large under another name, so the grid reads complete.
// Every other field keeps base's value (and its reason).
var (
	variantDepths        = []int{50, 101, 152}
	variantEncoderLayers = []int{6, 12}
)

// variantName names the variant of base with a depth-d ResNet and an
// encoder of e layers.
func variantName(d, e int) string { return fmt.Sprintf("r%d-enc%d", d, e) }

// depthVariants maps every variant's name to its constructor.
func depthVariants() map[string]func() Config {
	out := map[string]func() Config{}
	for _, d := range variantDepths {
		for _, e := range variantEncoderLayers {
			out[variantName(d, e)] = func() Config {
				c := Base()
				c.ResNetDepth, c.EncoderLayers = d, e
				return c
			}
		}
	}
	return out
}

// VariantNames lists the depth variants, sorted by backbone then encoder
// depth.
func VariantNames() []string {
	var n []string
	for _, d := range variantDepths {
		for _, e := range variantEncoderLayers {
			n = append(n, variantName(d, e))
		}
	}
	return n
}

// WriteVariants prints one line per depth variant: backbone, encoder
// layers and parameter counts (built dry: no LibTorch).
func WriteVariants(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "preset\tbackbone\tencoder layers\tbackbone params\tencoder params\ttotal\n")
	for _, name := range VariantNames() {
		c, err := Preset(name)
		if err != nil {
			return err
		}
		s, err := Describe(c)
		if err != nil {
			return fmt.Errorf("model: variant %s: %w", name, err)
		}
		_, per, total, _ := s.Counts()
		fmt.Fprintf(tw, "%s\tResNet-%d\t%d\t%s\t%s\t%s\n", name, c.ResNetDepth, c.EncoderLayers,
			human(per["backbone"]), human(per["encoder"]), human(total))
	}
	return tw.Flush()
}

package model

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Summary is a model's structure without building it: every tensor's name
// and shape, and parameter counts per component. It needs no LibTorch.
type Summary struct {
	Config     Config
	Params     []*Param // Shape set, T nil
	C5Channels int
}

// Describe lays out the model of c without allocating it.
func Describe(c Config) (*Summary, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	ps := &paramSet{store: &store{dry: true, byName: map[string]*Param{}}}
	m, err := build(ps, c)
	if err != nil {
		return nil, err
	}
	return &Summary{Config: c, Params: ps.list, C5Channels: m.Backbone.OutChannels}, nil
}

// Component is the first part of a tensor name: backbone, encoder, …
func Component(name string) string {
	c, _, _ := strings.Cut(name, ".")
	return c
}

// Counts returns parameter elements per component (buffers excluded), in
// first-appearance order, and the total and trainable totals.
func (s *Summary) Counts() (order []string, per map[string]int64, total, trainable int64) {
	per = map[string]int64{}
	for _, p := range s.Params {
		if p.Buffer {
			continue
		}
		c := Component(p.Name)
		if _, ok := per[c]; !ok {
			order = append(order, c)
		}
		n := int64(numel(p.Shape))
		per[c] += n
		total += n
		if p.Trainable() {
			trainable += n
		}
	}
	return order, per, total, trainable
}

// Write prints the layers and parameter counts; verbose lists every tensor.
func (s *Summary) Write(w io.Writer, verbose bool) error {
	c := s.Config
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	block := "basic"
	if c.ResNetDepth >= 50 {
		block = "bottleneck"
	}
	stride := 32
	if c.DilateC5 {
		stride /= 2
	}
	if c.NoStemPool {
		stride /= 2
	}
	fmt.Fprintf(tw, "backbone\tResNet-%d (%s blocks, width %d), C5 %d channels, stride %d, frozen BN %v, %d trainable stages\n",
		c.ResNetDepth, block, c.ResNetWidth, s.C5Channels, stride, c.FrozenBN, c.TrainableStages)
	fmt.Fprintf(tw, "input_proj\t1x1 conv %d -> %d, 2-D sine positions (T=10000, normalised)\n", s.C5Channels, c.DModel)
	fmt.Fprintf(tw, "text\ttoken %d + position %d + segment 2, d %d, LayerNorm\n", c.VocabSize, c.MaxTextLen, c.DModel)
	fmt.Fprintf(tw, "encoder\t%d pre-norm layers, d %d, %d heads (head %d), FFN %d, dropout %g\n",
		c.EncoderLayers, c.DModel, c.Heads, c.HeadDim(), c.FFN, c.Dropout)
	fmt.Fprintf(tw, "mlm\tdense+LayerNorm, output tied to token embedding: %v\n", c.TieMLM)
	fmt.Fprintf(tw, "itm\ttanh pooler on [CLS] -> 2\n")
	fmt.Fprintf(tw, "det_decoder\t%d layers, %d queries -> %d classes + no-object, %d attributes, 3-layer box MLP\n",
		c.DecoderLayers, c.NumQueries, c.NumClasses, c.NumAttributes)
	fmt.Fprintf(tw, "cap_decoder\t%d causal layers (shared with detection: %v), max %d tokens\n",
		c.DecoderLayers, c.SharedDecoder, c.MaxCaptionLen)
	fmt.Fprintln(tw)
	order, per, total, trainable := s.Counts()
	fmt.Fprintf(tw, "component\tparameters\n")
	for _, k := range order {
		fmt.Fprintf(tw, "%s\t%s\n", k, human(per[k]))
	}
	fmt.Fprintf(tw, "total\t%s (%d)\n", human(total), total)
	fmt.Fprintf(tw, "trainable\t%s (%d)\n", human(trainable), trainable)
	if verbose {
		fmt.Fprintln(tw)
		for _, p := range s.Params {
			kind := "param"
			switch {
			case p.Buffer:
				kind = "buffer"
			case p.Frozen:
				kind = "frozen"
			}
			fmt.Fprintf(tw, "%s\t%v\t%s\n", p.Name, p.Shape, kind)
		}
	}
	return tw.Flush()
}

func human(n int64) string {
	switch {
	case n >= 1e6:
		return fmt.Sprintf("%.2fM", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1fK", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}

package eval

import (
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
)

// WriteTable prints the report for people: one metric per line with its
// counts, then the sample captions next to the truth.
func WriteTable(w io.Writer, r *Report) error {
	fmt.Fprintf(w, "evaluation on %d held-out images (checkpoint %d, step %d)\n", r.Images, r.Checkpoint.ID, r.Checkpoint.Step)
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	pct := func(a Accuracy) string { return fmt.Sprintf("%.1f%%\t(%d/%d)", 100*a.Rate(), a.Correct, a.Total) }
	num := func(v float64) string {
		if v < 0 {
			return "n/a\t(no ground truth in range)"
		}
		return fmt.Sprintf("%.3f\t", v)
	}
	fmt.Fprintln(tw, "METRIC\tVALUE\t")
	fmt.Fprintf(tw, "MLM accuracy, one colour word masked\t%s\n", pct(r.ColourMLM))
	fmt.Fprintf(tw, "MLM accuracy, every colour word masked\t%s\n", pct(r.ColourMLMAll))
	fmt.Fprintf(tw, "ITM accuracy (half mismatched)\t%s\n", pct(r.ITM))
	d := r.Detection
	for _, m := range []struct {
		name string
		v    float64
	}{
		{"detection AP @[.50:.95]", d.AP}, {"detection AP50", d.AP50}, {"detection AP75", d.AP75},
		{"detection AP small (< 32²)", d.APSmall}, {"detection AP medium", d.APMedium}, {"detection AP large (> 96²)", d.APLarge},
		{"detection AR@1", d.AR1}, {"detection AR@10", d.AR10}, {"detection AR@100", d.AR100},
		{"detection AR small", d.ARSmall}, {"detection AR medium", d.ARMedium}, {"detection AR large", d.ARLarge},
	} {
		fmt.Fprintf(tw, "%s\t%s\n", m.name, num(m.v))
	}
	a := r.Attributes
	fmt.Fprintf(tw, "attributes, top-1 on matched boxes\t%.1f%%\t(%d/%d)\n", 100*a.Top1Rate(), a.Top1, a.Objects)
	fmt.Fprintf(tw, "attributes, exact set on matched boxes\t%.1f%%\t(%d/%d)\n", 100*a.ExactRate(), a.Exact, a.Objects)
	caps := func(name string, c CaptionScores) {
		for n, b := range c.BLEU {
			fmt.Fprintf(tw, "captions %s BLEU-%d\t%.3f\t(%d images)\n", name, n+1, b, c.Images)
		}
		fmt.Fprintf(tw, "captions %s CIDEr-D\t%.3f\t(%d images)\n", name, c.CIDErD, c.Images)
	}
	caps("greedy", r.Greedy)
	if r.Beam != nil {
		caps("beam", *r.Beam)
	}
	if rt := r.Retrieval; rt != nil {
		for k, K := range RetrievalKs {
			fmt.Fprintf(tw, "retrieval image→text R@%d\t%.1f%%\t(N = %d)\n", K, 100*rt.ImageToText[k], rt.N)
		}
		for k, K := range RetrievalKs {
			fmt.Fprintf(tw, "retrieval text→image R@%d\t%.1f%%\t(N = %d)\n", K, 100*rt.TextToImage[k], rt.N)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	names := make([]string, 0, len(r.ClassAP))
	for n := range r.ClassAP {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) > 0 && len(names) <= 20 {
		fmt.Fprint(w, "AP per class:")
		for _, n := range names {
			if v := r.ClassAP[n]; v >= 0 {
				fmt.Fprintf(w, " %s %.3f", n, v)
			} else {
				fmt.Fprintf(w, " %s n/a", n)
			}
		}
		fmt.Fprintln(w)
	}
	if r.DroppedObjects > 0 {
		fmt.Fprintf(w, "left out: %d objects of classes the model does not know\n", r.DroppedObjects)
	}
	for _, s := range r.Samples {
		fmt.Fprintf(w, "caption: truth  %q\n         greedy %q%s\n", s.Truth, s.Greedy, matchMark(s.GreedyIs, s))
		if s.Beam != "" {
			fmt.Fprintf(w, "         beam   %q%s\n", s.Beam, matchMark(s.BeamIs, s))
		}
	}
	if r.BoxesPNG != "" {
		fmt.Fprintf(w, "boxes: %s (predictions with class probability ≥ %.1f, else the 3 most probable)\n", r.BoxesPNG, BoxScore)
	}
	return nil
}

// matchMark says after a generated caption what it is among the image's texts.
func matchMark(m TextMatch, s Sample) string {
	switch {
	case s.References == 0 && s.Regions == 0:
		return ""
	case m == TextIsCaption:
		return fmt.Sprintf("  ✓ one of the image's %d captions", s.References)
	case m == TextIsRegion:
		return "  ✓ names one of its objects, as its region description does"
	}
	return fmt.Sprintf("  ✗ none of the image's %d captions or %d region descriptions", s.References, s.Regions)
}

package data

import "strings"

// MLM masking, as in BERT: each non-special token of a row is chosen with
// probability MLMProb (an independent draw per token, so the share is
// MLMProb on average and a short caption may get none); a chosen token is
// replaced by [MASK] 80% of the time, by a uniformly random ordinary token
// 10% of the time, and kept 10% of the time. Its label is the original id;
// every other position is labelled IgnoreIndex.
//
// Attribute words — colour words and the words naming the dataset's
// attributes (Config.AttributeWords) that are whole tokens — are chosen
// with probability max(MLMProb, AttributeMaskProb): masking focused on what
// only the pixels tell, in the spirit of ERNIE's entity masking. Naming a
// masked colour needs the image, and on an image of several objects it
// needs the word bound to the right object — found through the noun and the
// other words left around it, which is why nouns are not masked more than
// BERT's 15%. BERT's 15% alone gives a few such labels a batch. With
// AttributeMaskProb 0 the masking is BERT's, draw for draw.
//
// Rows whose text is an ITM negative are masked the same way (as in LXMERT),
// so the presence of [MASK] tokens does not give the ITM label away, but get
// no MLM labels at all: predicting words of a caption that does not describe
// the image teaches nothing about the image. A colour-swap negative shows its
// swapped word even where masking chose it (itm.go).

// maskTokens applies MLM masking in place to ids (a `[CLS] … [SEP]` row) and
// writes labels (same length). attrs holds the attribute token ids; rng is
// the row's own stream.
func maskTokens(ids, labels []int64, v *Vocab, prob, attrProb float64, attrs map[int64]bool, rng *stream) {
	normal := v.NormalIDs()
	for i, id := range ids {
		labels[i] = IgnoreIndex
		if v.IsSpecial(id) && id != v.UNKID {
			continue
		}
		p := prob
		if attrs[id] {
			p = max(p, attrProb)
		}
		if rng.Float64() >= p {
			continue
		}
		labels[i] = id
		switch u := rng.Float64(); {
		case u < 0.8:
			ids[i] = v.MaskID
		case u < 0.9 && len(normal) > 0:
			ids[i] = normal[rng.Intn(len(normal))]
		}
	}
}

// attributeTokens returns the ids of the attribute words that are whole
// tokens of v: the colour words and every word of words.
func attributeTokens(v *Vocab, words []string) map[int64]bool {
	set := map[int64]bool{}
	for _, w := range ColourWords {
		if id, ok := v.ID(w); ok {
			set[id] = true
		}
	}
	for _, name := range words {
		for _, w := range strings.Fields(strings.ToLower(name)) {
			if id, ok := v.ID(w); ok && !v.IsSpecial(id) {
				set[id] = true
			}
		}
	}
	return set
}

package data

// MLM masking, as in BERT: each non-special token of a matched row is chosen
// with probability MLMProb (an independent draw per token, so the share is
// MLMProb on average and a short caption may get none); a chosen token is
// replaced by [MASK] 80% of the time, by a uniformly random ordinary token
// 10% of the time, and kept 10% of the time. Its label is the original id;
// every other position is labelled IgnoreIndex. Rows whose text is an ITM
// negative are masked the same way (as in LXMERT), so the presence of [MASK]
// tokens does not give the ITM label away, but get no MLM labels at all:
// predicting words of a caption that does not describe the image teaches
// nothing about the image.

// maskTokens applies MLM masking in place to ids (a `[CLS] … [SEP]` row) and
// writes labels (same length). rng is the row's own stream.
func maskTokens(ids, labels []int64, v *Vocab, prob float64, rng *stream) {
	normal := v.NormalIDs()
	for i, id := range ids {
		labels[i] = IgnoreIndex
		if v.IsSpecial(id) && id != v.UNKID {
			continue
		}
		if rng.Float64() >= prob {
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

package data

import (
	"slices"
	"strings"
)

// ITM negatives. Each row is, with probability ITMNegProb, given a text that
// does not describe its image (label 0); the others keep their own text
// (label 1). A negative is HARD with probability HardNegProb: the row's own
// text with one colour word swapped for another colour ("a red circle left
// of a blue square" → "a red circle left of a green square"), or, with
// probability ExchangeProb when the text names two colours, with the two
// exchanged ("a blue circle left of a red square": the same words bound to
// the other objects); only the pixels tell them apart. It is masked as the
// row's own text would be, except that the swapped words are always shown: a
// swap hidden behind a [MASK] would be a negative the text cannot tell. A
// text with no colour word falls back to the other kind.
// The other negatives take the text of another row of the same batch whose
// image differs (uniformly among such rows); a text equal to one of the
// row's own image's texts is never used as a negative. When neither kind is
// possible (a batch of one image and a text with no colour word) the row
// stays positive. Every choice comes from the row's own stream
// (seed, epoch, pair id), so it does not depend on decode order.

// ColourWords are the colour names hard negatives swap. They include the
// shapes world's palette and the common colour names of COCO and VG.
var ColourWords = []string{
	"red", "green", "blue", "yellow", "orange", "purple", "pink", "brown",
	"black", "white", "gray", "grey", "cyan", "magenta",
}

// NegKind says how a row's ITM text was chosen.
type NegKind uint8

// The kinds of ITM rows.
const (
	NegNone         NegKind = iota // positive: the row's own text
	NegColourSwap                  // hard: own text with one colour word swapped
	NegOtherInBatch                // the text of another image in the batch
)

// colourTokens are the vocabulary's colour words that are whole tokens, in
// ColourWords' order, and the same as a set.
type colourTokens struct {
	ids []int64
	set map[int64]bool
}

func newColourTokens(v *Vocab) colourTokens {
	c := colourTokens{set: map[int64]bool{}}
	for _, w := range ColourWords {
		if id, ok := v.ID(w); ok && !c.set[id] {
			c.ids = append(c.ids, id)
			c.set[id] = true
		}
	}
	return c
}

// swapColour changes, in place, the colours of ids for a colour-swap
// negative and returns the positions it changed (none when ids has no
// colour). With probability exchange, and when ids has two different colour
// tokens, it exchanges them ("a red circle left of a blue square" → "a blue
// circle left of a red square": the same words, bound to the other objects);
// otherwise it replaces one colour token (chosen by rng) by another colour.
// Never grey for gray or back: both name the same colour.
func (c colourTokens) swapColour(ids []int64, v *Vocab, exchange float64, rng *stream) []int {
	var at []int
	for j, id := range ids {
		if c.set[id] {
			at = append(at, j)
		}
	}
	if len(at) == 0 {
		return nil
	}
	if exchange > 0 && rng.Float64() < exchange {
		var pairs [][2]int
		for x := range at {
			for y := x + 1; y < len(at); y++ {
				a, b := ids[at[x]], ids[at[y]]
				if a != b && !(isGrey(v.Token(a)) && isGrey(v.Token(b))) {
					pairs = append(pairs, [2]int{at[x], at[y]})
				}
			}
		}
		if len(pairs) > 0 {
			p := pairs[rng.Intn(len(pairs))]
			ids[p[0]], ids[p[1]] = ids[p[1]], ids[p[0]]
			return p[:]
		}
	}
	j := at[rng.Intn(len(at))]
	old := v.Token(ids[j])
	var choices []int64
	for _, id := range c.ids {
		if w := v.Token(id); id != ids[j] && !(isGrey(w) && isGrey(old)) {
			choices = append(choices, id)
		}
	}
	if len(choices) == 0 {
		return nil
	}
	ids[j] = choices[rng.Intn(len(choices))]
	return []int{j}
}

func isGrey(s string) bool { return s == "grey" || s == "gray" }

// itmRow is one row's encoder text after the ITM choice and masking.
type itmRow struct {
	kind   NegKind
	ids    []int64 // [CLS] … [SEP], masked
	labels []int64 // MLM labels; all IgnoreIndex for a negative
}

// rowText is what buildITMRow needs of the batch: every row's own text and
// image, and the texts of row r's image.
type rowText struct {
	texts  []string
	images []uint64
	own    map[string]bool
}

// buildITMRow decides row r's ITM text, encodes and masks it. itm is the
// row's ITM stream; mlm returns a fresh copy of its MLM stream, so a text is
// masked the same way whichever path encodes it.
func buildITMRow(r int, rt rowText, cfg *Config, tok *Tokenizer, col colourTokens, attrs map[int64]bool, itm *stream, mlm func() *stream) (itmRow, error) {
	v := tok.Vocab()
	encode := func(text string) (itmRow, error) {
		ids, err := tok.Encode(text, cfg.MaxTextLen)
		if err != nil {
			return itmRow{}, err
		}
		labels := make([]int64, len(ids))
		maskTokens(ids, labels, v, cfg.MLMProb, cfg.AttributeMaskProb, attrs, mlm())
		return itmRow{ids: ids, labels: labels}, nil
	}
	negative := func(row itmRow, kind NegKind) itmRow {
		row.kind = kind
		for j := range row.labels {
			row.labels[j] = IgnoreIndex
		}
		return row
	}
	if itm.Float64() >= cfg.ITMNegProb {
		return encode(rt.texts[r])
	}
	hard := itm.Float64() < cfg.HardNegProb
	tryHard := func() (itmRow, bool, error) {
		row, err := encode(rt.texts[r])
		if err != nil {
			return itmRow{}, false, err
		}
		// The text unmasked, with one colour swapped: it must describe
		// nothing of the image. The swapped token is shown even where
		// masking chose it, so a swap is never hidden behind a [MASK].
		plain := append([]int64(nil), row.ids...)
		for j, l := range row.labels {
			if l != IgnoreIndex {
				plain[j] = l
			}
		}
		changed := col.swapColour(plain, v, cfg.ExchangeProb, itm)
		if len(changed) == 0 {
			return itmRow{}, false, nil
		}
		for _, j := range changed {
			row.ids[j] = plain[j]
		}
		// Only a text naming the new colour can equal it: encode just those
		// (an image may have dozens of region texts; this runs per row).
		colour := v.Token(plain[changed[0]])
		for t := range rt.own {
			if !strings.Contains(strings.ToLower(t), colour) {
				continue
			}
			ids, err := tok.Encode(t, cfg.MaxTextLen)
			if err != nil {
				return itmRow{}, false, err
			}
			if slices.Equal(ids, plain) {
				return itmRow{}, false, nil
			}
		}
		return negative(row, NegColourSwap), true, nil
	}
	tryOther := func() (itmRow, bool, error) {
		var cands []int
		for i := range rt.texts {
			if rt.images[i] != rt.images[r] && !rt.own[rt.texts[i]] {
				cands = append(cands, i)
			}
		}
		if len(cands) == 0 {
			return itmRow{}, false, nil
		}
		row, err := encode(rt.texts[cands[itm.Intn(len(cands))]])
		if err != nil {
			return itmRow{}, false, err
		}
		return negative(row, NegOtherInBatch), true, nil
	}
	first, second := tryOther, tryHard
	if hard {
		first, second = tryHard, tryOther
	}
	for _, try := range []func() (itmRow, bool, error){first, second} {
		row, ok, err := try()
		if err != nil || ok {
			return row, err
		}
	}
	return encode(rt.texts[r])
}

package data

import (
	"strings"
)

// ITM negatives. Each row is, with probability ITMNegProb, given a text that
// does not describe its image (label 0); the others keep their own text
// (label 1). A negative is HARD with probability HardNegProb: the row's own
// text with one colour word swapped for another colour ("a red circle left
// of a blue square" → "a red circle left of a green square"): the same
// objects and words, so only the pixels tell them apart. A text with no
// colour word cannot be made hard that way and falls back to the other kind.
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

var colourSet = func() map[string]bool {
	m := make(map[string]bool, len(ColourWords))
	for _, c := range ColourWords {
		m[c] = true
	}
	return m
}()

// NegKind says how a row's ITM text was chosen.
type NegKind uint8

// The kinds of ITM rows.
const (
	NegNone         NegKind = iota // positive: the row's own text
	NegColourSwap                  // hard: own text with one colour word swapped
	NegOtherInBatch                // the text of another image in the batch
)

// swapColour returns text with one of its colour words (chosen by rng)
// replaced by a different colour, and whether it had any. Words are compared
// case-insensitively; the replacement is lower case. Only colours that are
// whole tokens of v are used as replacements, so a swap never introduces an
// [UNK] or an unusual split that would give the negative away.
func swapColour(text string, v *Vocab, rng *stream) (string, bool) {
	words := strings.Fields(text)
	var at []int
	for i, w := range words {
		if colourSet[strings.ToLower(strings.Trim(w, ".,;:!?\"'"))] {
			at = append(at, i)
		}
	}
	if len(at) == 0 {
		return text, false
	}
	i := at[rng.Intn(len(at))]
	w := words[i]
	core := strings.Trim(w, ".,;:!?\"'")
	old := strings.ToLower(core)
	// Never swap grey↔gray: both name the same colour.
	var choices []string
	for _, c := range ColourWords {
		if _, ok := v.ID(c); ok && c != old && !(isGrey(c) && isGrey(old)) {
			choices = append(choices, c)
		}
	}
	if len(choices) == 0 {
		return text, false
	}
	repl := choices[rng.Intn(len(choices))]
	words[i] = strings.Replace(w, core, repl, 1)
	return strings.Join(words, " "), true
}

func isGrey(s string) bool { return s == "grey" || s == "gray" }

// itmChoice is one row's ITM decision.
type itmChoice struct {
	kind NegKind
	text string // the text the encoder sees
}

// chooseITM decides the encoder text of row r. texts[i] is row i's own text,
// images[i] its image id, own[r] the set of all texts of row r's image.
func chooseITM(r int, texts []string, images []uint64, own map[string]bool, cfg *Config, v *Vocab, rng *stream) itmChoice {
	pos := itmChoice{kind: NegNone, text: texts[r]}
	if rng.Float64() >= cfg.ITMNegProb {
		return pos
	}
	hard := rng.Float64() < cfg.HardNegProb
	tryHard := func() (itmChoice, bool) {
		s, ok := swapColour(texts[r], v, rng)
		if !ok || own[s] {
			return itmChoice{}, false
		}
		return itmChoice{kind: NegColourSwap, text: s}, true
	}
	tryOther := func() (itmChoice, bool) {
		var cands []int
		for i := range texts {
			if images[i] != images[r] && !own[texts[i]] {
				cands = append(cands, i)
			}
		}
		if len(cands) == 0 {
			return itmChoice{}, false
		}
		return itmChoice{kind: NegOtherInBatch, text: texts[cands[rng.Intn(len(cands))]]}, true
	}
	first, second := tryOther, tryHard
	if hard {
		first, second = tryHard, tryOther
	}
	if c, ok := first(); ok {
		return c
	}
	if c, ok := second(); ok {
		return c
	}
	return pos
}

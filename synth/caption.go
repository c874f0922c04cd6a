package synth

import (
	"image"
	"math/rand/v2"
	"strings"
)

// Relations are the spatial relation phrases captions use.
var Relations = []string{"left of", "right of", "above", "below"}

// Relation returns how a lies relative to b along the axis where their box
// centres differ most: "left of", "right of", "above" or "below".
func Relation(a, b image.Rectangle) string {
	ax, ay := a.Min.X+a.Max.X, a.Min.Y+a.Max.Y // twice the centres: exact integers
	bx, by := b.Min.X+b.Max.X, b.Min.Y+b.Max.Y
	dx, dy := bx-ax, by-ay
	if abs(dx) >= abs(dy) {
		if dx > 0 {
			return "left of"
		}
		return "right of"
	}
	if dy > 0 {
		return "above"
	}
	return "below"
}

// Position names where box lies in a w x h image, by thirds: "in the top
// left", "in the middle right", "in the center", ...
func Position(box image.Rectangle, w, h int) string {
	cx, cy := (box.Min.X+box.Max.X)*3/2, (box.Min.Y+box.Max.Y)*3/2 // centre in thirds x 2
	col := []string{"left", "center", "right"}[min(2, cx/w)]
	row := []string{"top", "middle", "bottom"}[min(2, cy/h)]
	if row == "middle" && col == "center" {
		return "in the center"
	}
	return "in the " + row + " " + col
}

var countWords = []string{"no", "one", "two", "three", "four"}

// captions draws n captions from the templates that fit the objects.
func captions(rng *rand.Rand, objs []Object, w, h, n int) []string {
	out := make([]string, 0, n)
	for len(out) < n {
		if len(objs) == 0 {
			out = append(out, "an empty background")
			continue
		}
		t := rng.IntN(4)
		if t == 1 && len(objs) < 2 {
			t = 0
		}
		a := objs[rng.IntN(len(objs))]
		switch t {
		case 0:
			out = append(out, a.Phrase())
		case 1:
			i := rng.IntN(len(objs))
			j := (i + 1 + rng.IntN(len(objs)-1)) % len(objs)
			out = append(out, RelationPhrase(objs[i], objs[j]))
		case 2:
			out = append(out, a.Phrase()+" "+Position(a.Box, w, h))
		case 3:
			out = append(out, countCaption(objs))
		}
	}
	return out
}

// RelationPhrase is "<a> <relation> <b>", e.g. "a small red circle left of a
// large blue square".
func RelationPhrase(a, b Object) string {
	return a.Phrase() + " " + Relation(a.Box, b.Box) + " " + b.Phrase()
}

// countCaption lists every object: "two shapes: a small red circle and a
// large blue square".
func countCaption(objs []Object) string {
	var b strings.Builder
	b.WriteString(countWords[len(objs)])
	if len(objs) == 1 {
		b.WriteString(" shape: ")
	} else {
		b.WriteString(" shapes: ")
	}
	for k, o := range objs {
		switch {
		case k == 0:
		case k == len(objs)-1:
			b.WriteString(" and ")
		default:
			b.WriteString(", ")
		}
		b.WriteString(o.Phrase())
	}
	return b.String()
}

// regions describes every object with its box, then every ordered pair
// (i < j) with the union of their boxes.
func regions(objs []Object) []Region {
	var out []Region
	for _, o := range objs {
		out = append(out, Region{Text: o.Phrase(), Box: o.Box})
	}
	for i := range objs {
		for j := i + 1; j < len(objs); j++ {
			out = append(out, Region{Text: RelationPhrase(objs[i], objs[j]), Box: objs[i].Box.Union(objs[j].Box)})
		}
	}
	return out
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

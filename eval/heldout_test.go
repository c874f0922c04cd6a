package eval

import (
	"slices"
	"testing"

	"github.com/e2evlp/vlp/synth"
)

// TestSynthSetRemapsAndHoldsOut checks that a held-out world is not the
// training world, that its objects are renamed into the model's
// vocabularies by name, and that unknown classes are dropped and counted.
func TestSynthSetRemapsAndHoldsOut(t *testing.T) {
	same, err := SynthSet(1, 8, 32, synth.ClassNames, synth.AttributeNames)
	if err != nil {
		t.Fatal(err)
	}
	// The model's vocabularies in reverse order, "circle" unknown.
	classes := slices.Clone(synth.ClassNames)
	slices.Reverse(classes)
	classes = slices.DeleteFunc(classes, func(s string) bool { return s == "circle" })
	attrs := slices.Clone(synth.AttributeNames)
	slices.Reverse(attrs)
	other, err := SynthSet(1, 8, 32, classes, attrs)
	if err != nil {
		t.Fatal(err)
	}
	if len(same.Examples) != 8 || len(same.Refs) != 8 {
		t.Fatalf("%d examples, %d reference lists, want 8", len(same.Examples), len(same.Refs))
	}
	circles, kept := 0, 0
	for i, e := range same.Examples {
		if len(same.Refs[i]) == 0 || e.Meta.Texts[e.Text].Kind != "caption" {
			t.Errorf("image %d: row text %q, %d references", i, e.Meta.Texts[e.Text].Text, len(same.Refs[i]))
		}
		var want []string
		for _, ob := range e.Meta.Objects {
			if name := synth.ClassNames[ob.Class]; name == "circle" {
				circles++
			} else {
				want = append(want, name)
			}
		}
		var got []string
		for _, ob := range other.Examples[i].Meta.Objects {
			got = append(got, classes[ob.Class])
			kept++
			for _, a := range ob.Attributes {
				if attrs[a] == "" {
					t.Errorf("attribute %d out of range", a)
				}
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("image %d: classes %v after renaming, want %v", i, got, want)
		}
	}
	if other.DroppedObjects != circles || kept == 0 {
		t.Errorf("dropped %d objects, the images have %d circles; %d kept", other.DroppedObjects, circles, kept)
	}
	// The training world of seed 1 is another world.
	train, err := SynthSet(HeldOutSeed(1), 8, 32, synth.ClassNames, synth.AttributeNames) // HeldOutSeed inverts itself
	if err != nil {
		t.Fatal(err)
	}
	if same.Examples[0].Meta.Texts[0].Text == train.Examples[0].Meta.Texts[0].Text &&
		same.Examples[1].Meta.Texts[0].Text == train.Examples[1].Meta.Texts[0].Text {
		t.Error("the held-out world starts with the training world's scenes")
	}
}

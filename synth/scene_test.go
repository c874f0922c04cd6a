package synth

import (
	"bytes"
	"errors"
	"image"
	"image/jpeg"
	"reflect"
	"regexp"
	"testing"
)

func TestSceneDeterministic(t *testing.T) {
	cfg := DefaultConfig(42, 50)
	for i := 0; i < 20; i++ {
		a, b := Scene(cfg, i), Scene(cfg, i)
		if !bytes.Equal(a.Image.Pix, b.Image.Pix) {
			t.Fatalf("image %d: pixels differ between two calls", i)
		}
		if !reflect.DeepEqual(a.Objects, b.Objects) || !reflect.DeepEqual(a.Captions, b.Captions) || !reflect.DeepEqual(a.Regions, b.Regions) {
			t.Fatalf("image %d: annotations differ between two calls", i)
		}
	}
	// Different indices and different seeds give different worlds.
	if bytes.Equal(Scene(cfg, 0).Image.Pix, Scene(cfg, 1).Image.Pix) {
		t.Fatal("images 0 and 1 are identical")
	}
	other := DefaultConfig(43, 50)
	if bytes.Equal(Scene(cfg, 3).Image.Pix, Scene(other, 3).Image.Pix) {
		t.Fatal("seeds 42 and 43 give the same image 3")
	}
}

const descRE = `a (small|large) (red|green|blue|yellow|purple|orange) (circle|square|triangle|star|diamond|cross)`

var (
	reSingle   = regexp.MustCompile(`^` + descRE + `$`)
	reRelation = regexp.MustCompile(`^` + descRE + ` (left of|right of|above|below) ` + descRE + `$`)
	rePosition = regexp.MustCompile(`^` + descRE + ` (in the .+)$`)
	reCount    = regexp.MustCompile(`^(one|two|three|four) shapes?: `)
	reDesc     = regexp.MustCompile(descRE)
)

// find returns the objects matching (size, colour, class).
func find(objs []Object, size, colour, class string) []Object {
	var out []Object
	for _, o := range objs {
		if o.Size == size && o.Colour == colour && o.Class == class {
			out = append(out, o)
		}
	}
	return out
}

func TestCaptionsMatchObjects(t *testing.T) {
	for _, size := range []int{96, 384} {
		cfg := Config{Seed: 7, Images: 100, Width: size, Height: size}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 100; i++ {
			p := Scene(cfg, i)
			if len(p.Objects) < 1 || len(p.Objects) > 4 {
				t.Fatalf("image %d: %d objects", i, len(p.Objects))
			}
			if len(p.Captions) != 5 {
				t.Fatalf("image %d: %d captions", i, len(p.Captions))
			}
			for _, c := range p.Captions {
				checkCaption(t, p, c)
			}
			for _, r := range p.Regions {
				checkCaption(t, p, r.Text)
				if !r.Box.In(p.Image.Bounds()) || r.Box.Empty() {
					t.Fatalf("image %d: region box %v outside the image", i, r.Box)
				}
			}
		}
	}
}

func checkCaption(t *testing.T, p Picture, c string) {
	t.Helper()
	switch {
	case reRelation.MatchString(c):
		m := reRelation.FindStringSubmatch(c)
		ok := false
		for _, a := range find(p.Objects, m[1], m[2], m[3]) {
			for _, b := range find(p.Objects, m[5], m[6], m[7]) {
				if a != b && Relation(a.Box, b.Box) == m[4] {
					ok = true
				}
			}
		}
		if !ok {
			t.Fatalf("image %d: %q does not hold for %+v", p.Index, c, p.Objects)
		}
	case reSingle.MatchString(c):
		m := reSingle.FindStringSubmatch(c)
		if len(find(p.Objects, m[1], m[2], m[3])) == 0 {
			t.Fatalf("image %d: %q names no object of %+v", p.Index, c, p.Objects)
		}
	case rePosition.MatchString(c):
		m := rePosition.FindStringSubmatch(c)
		ok := false
		for _, o := range find(p.Objects, m[1], m[2], m[3]) {
			ok = ok || Position(o.Box, p.Image.Bounds().Dx(), p.Image.Bounds().Dy()) == m[4]
		}
		if !ok {
			t.Fatalf("image %d: %q: no such object there in %+v", p.Index, c, p.Objects)
		}
	case reCount.MatchString(c):
		descs := reDesc.FindAllStringSubmatch(c, -1)
		if len(descs) != len(p.Objects) || countWords[len(p.Objects)] != reCount.FindStringSubmatch(c)[1] {
			t.Fatalf("image %d: %q lists %d objects, the image has %d", p.Index, c, len(descs), len(p.Objects))
		}
		for k, d := range descs {
			o := p.Objects[k]
			if d[1] != o.Size || d[2] != o.Colour || d[3] != o.Class {
				t.Fatalf("image %d: %q: item %d is not %+v", p.Index, c, k, o)
			}
		}
	default:
		t.Fatalf("image %d: caption %q matches no template", p.Index, c)
	}
}

// TestColoursReadableFromPixels checks that each object's colour is the
// palette colour nearest to its box centre, before and after a JPEG round
// trip, that boxes stay inside the image and never overlap, and that the
// two sizes are apart.
func TestColoursReadableFromPixels(t *testing.T) {
	cfg := DefaultConfig(3, 200)
	for i := 0; i < 200; i++ {
		p := Scene(cfg, i)
		data, err := EncodeJPEG(p.Image)
		if err != nil {
			t.Fatal(err)
		}
		dec, err := jpeg.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		for k, o := range p.Objects {
			if !o.Box.In(p.Image.Bounds()) || o.Box.Empty() {
				t.Fatalf("image %d: box %v outside the image", i, o.Box)
			}
			for j := k + 1; j < len(p.Objects); j++ {
				if o.Box.Overlaps(p.Objects[j].Box) {
					t.Fatalf("image %d: boxes %v and %v overlap", i, o.Box, p.Objects[j].Box)
				}
			}
			c := image.Pt((o.Box.Min.X+o.Box.Max.X)/2, (o.Box.Min.Y+o.Box.Max.Y)/2)
			if got := NearestColour(p.Image.At(c.X, c.Y)); got != o.Colour {
				t.Fatalf("image %d: centre of %s reads %s", i, o.Phrase(), got)
			}
			if got := NearestColour(dec.At(c.X, c.Y)); got != o.Colour {
				t.Fatalf("image %d: after JPEG the centre of %s reads %s", i, o.Phrase(), got)
			}
			side := max(o.Box.Dx(), o.Box.Dy())
			if (o.Size == "small") != (side < 24) {
				t.Fatalf("image %d: %s has side %d px", i, o.Phrase(), side)
			}
		}
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"defaults", Config{Images: 10}, true},
		{"max size", Config{Width: 384, Height: 384}, true},
		{"negative images", Config{Images: -1}, false},
		{"too narrow", Config{Width: 8}, false},
		{"too tall", Config{Height: 5000}, false},
		{"five objects", Config{MaxObjects: 5}, false},
		{"min above max", Config{MinObjects: 3, MaxObjects: 2}, false},
		{"too many captions", Config{Captions: 50}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("error %v does not wrap ErrInvalidConfig", err)
			}
		})
	}
}

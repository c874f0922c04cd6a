package synth

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// dirSum hashes every file of dir, names and bytes.
func dirSum(t *testing.T, dir string) [32]byte {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		h.Write([]byte(rel))
		h.Write(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s
}

func TestFinetuneExportsAreDeterministic(t *testing.T) {
	cfg := FinetuneConfig{World: Config{Seed: 3, Images: 24, Width: 48, Height: 48}, Workers: 3}
	for name, export := range map[string]func(FinetuneConfig, string) error{
		"vqa":      func(c FinetuneConfig, d string) error { _, err := ExportVQA(c, d); return err },
		"nlvr2":    func(c FinetuneConfig, d string) error { _, err := ExportNLVR2(c, d); return err },
		"karpathy": func(c FinetuneConfig, d string) error { _, err := ExportKarpathy(c, d); return err },
	} {
		a, b := t.TempDir(), t.TempDir()
		c1 := cfg
		c1.Workers = 1
		if err := export(cfg, a); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := export(c1, b); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if dirSum(t, a) != dirSum(t, b) {
			t.Errorf("%s: two exports of one seed differ", name)
		}
		c2 := cfg
		c2.World.Seed = 4
		d := t.TempDir()
		if err := export(c2, d); err != nil {
			t.Fatal(err)
		}
		if dirSum(t, a) == dirSum(t, d) {
			t.Errorf("%s: seeds 3 and 4 give the same files", name)
		}
	}
}

// TestVQAAnswersAreTrue reads each question back with its own patterns and
// checks the true answer against the drawn objects.
func TestVQAAnswersAreTrue(t *testing.T) {
	cfg := Config{Seed: 9, Images: 300, Width: 64, Height: 64}.WithDefaults()
	var (
		colourQ = regexp.MustCompile(`^what color is the (\w+)\?$`)
		shapeQ  = regexp.MustCompile(`^what shape is the (\w+) object\?$`)
		sizeQ   = regexp.MustCompile(`^is the (\w+) (\w+) small or large\?$`)
		countQ  = regexp.MustCompile(`^how many (?:(\w+) )?shapes are there\?$`)
		relQ    = regexp.MustCompile(`^is the (\w+) (\w+) (left of|right of|above|below) the (\w+) (\w+)\?$`)
		whereQ  = regexp.MustCompile(`^where is the (\w+) (\w+)\?$`)
	)
	kinds := map[string]int{}
	wrong, humans := 0, 0
	for i := 0; i < cfg.Images; i++ {
		p := Scene(cfg, i)
		find := func(colour, class string) []Object {
			var out []Object
			for _, o := range p.Objects {
				if (colour == "" || o.Colour == colour) && (class == "" || o.Class == class) {
					out = append(out, o)
				}
			}
			return out
		}
		one := func(colour, class string) Object {
			os := find(colour, class)
			if len(os) != 1 {
				t.Fatalf("image %d: %q %q names %d objects", i, colour, class, len(os))
			}
			return os[0]
		}
		for _, it := range VQAQuestions(p, cfg.Width, cfg.Height, 5, 0.2, cfg.Seed) {
			kinds[it.Kind]++
			var want string
			switch m := []([]string){colourQ.FindStringSubmatch(it.Question), shapeQ.FindStringSubmatch(it.Question),
				sizeQ.FindStringSubmatch(it.Question), countQ.FindStringSubmatch(it.Question),
				relQ.FindStringSubmatch(it.Question), whereQ.FindStringSubmatch(it.Question)}; {
			case m[0] != nil:
				want = one("", m[0][1]).Colour
			case m[1] != nil:
				want = one(m[1][1], "").Class
			case m[2] != nil:
				want = one(m[2][1], m[2][2]).Size
			case m[3] != nil:
				want = strconv.Itoa(len(find(m[3][1], "")))
			case m[4] != nil:
				a, b := one(m[4][1], m[4][2]), one(m[4][4], m[4][5])
				want = map[bool]string{true: "yes", false: "no"}[Relation(a.Box, b.Box) == m[4][3]]
			case m[5] != nil:
				want = strings.TrimPrefix(Position(one(m[5][1], m[5][2]).Box, cfg.Width, cfg.Height), "in the ")
			default:
				t.Fatalf("image %d: unexpected question %q", i, it.Question)
			}
			if it.Answer != want {
				t.Errorf("image %d: %q answered %q, the picture says %q", i, it.Question, it.Answer, want)
			}
			for _, h := range it.Humans {
				humans++
				if h != it.Answer {
					wrong++
				}
			}
		}
	}
	for _, k := range QuestionKinds {
		if kinds[k] < cfg.Images/10 {
			t.Errorf("only %d %s questions in %v", kinds[k], k, kinds)
		}
	}
	if f := float64(wrong) / float64(humans); f < 0.15 || f > 0.25 {
		t.Errorf("%.3f of human answers wrong, want about 0.2", f)
	}
}

// TestNLVR2LabelsAreTrueAndBalanced checks the exported lines against the
// drawn objects with the test's own reading of each sentence.
func TestNLVR2LabelsAreTrueAndBalanced(t *testing.T) {
	cfg := FinetuneConfig{World: Config{Seed: 5, Images: 8 * 40, Width: 48, Height: 48}}.WithDefaults()
	dir := t.TempDir()
	st, err := ExportNLVR2(cfg, dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Sets["train"] != 32 || st.Sets["dev"] != 4 || st.Sets["test1"] != 4 {
		t.Errorf("sets %v", st.Sets)
	}
	countOf := func(objs []Object, word string) int {
		n := 0
		for _, o := range objs {
			if o.Colour == word || o.Size == word || plural(o.Class) == word || o.Class == word {
				n++
			}
		}
		return n
	}
	num := map[string]int{"one": 1, "two": 2, "three": 3}
	var (
		moreL   = regexp.MustCompile(`^the left image has more (\w+) than the right image$`)
		moreR   = regexp.MustCompile(`^the right image has more (\w+) shapes than the left image$`)
		both    = regexp.MustCompile(`^both images contain a (\w+) shape$`)
		oneOf   = regexp.MustCompile(`^exactly one image contains a (\w+)$`)
		exactly = regexp.MustCompile(`^there are exactly (\w+) shapes in the left image$`)
		total   = regexp.MustCompile(`^there are (\w+) (\w+) shapes in the two images together$`)
	)
	trues, all := 0, 0
	for _, split := range NLVR2Splits {
		data, err := os.ReadFile(filepath.Join(dir, split+".json"))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
			var rec struct{ Identifier, Sentence, Label string }
			if err := json.Unmarshal(line, &rec); err != nil {
				t.Fatal(err)
			}
			parts := strings.Split(rec.Identifier, "-")
			set, _ := strconv.Atoi(parts[1])
			pair, _ := strconv.Atoi(parts[2])
			l, r := Scene(cfg.World, 8*set+2*pair).Objects, Scene(cfg.World, 8*set+2*pair+1).Objects
			var holds bool
			s := rec.Sentence
			switch {
			case moreL.MatchString(s):
				w := moreL.FindStringSubmatch(s)[1]
				holds = countOf(l, w) > countOf(r, w)
			case moreR.MatchString(s):
				w := moreR.FindStringSubmatch(s)[1]
				holds = countOf(r, w) > countOf(l, w)
			case both.MatchString(s):
				w := both.FindStringSubmatch(s)[1]
				holds = countOf(l, w) > 0 && countOf(r, w) > 0
			case oneOf.MatchString(s):
				w := oneOf.FindStringSubmatch(s)[1]
				holds = (countOf(l, w) > 0) != (countOf(r, w) > 0)
			case exactly.MatchString(s):
				holds = len(l) == num[exactly.FindStringSubmatch(s)[1]]
			case total.MatchString(s):
				m := total.FindStringSubmatch(s)
				holds = countOf(l, m[2])+countOf(r, m[2]) == num[m[1]]
			default:
				t.Fatalf("unexpected sentence %q", s)
			}
			if want := map[bool]string{true: "True", false: "False"}[holds]; rec.Label != want {
				t.Errorf("%s %q: label %s, the pictures say %s", rec.Identifier, s, rec.Label, want)
			}
			all++
			if holds {
				trues++
			}
		}
	}
	if all != 40*8 {
		t.Errorf("%d examples, want %d", all, 40*8)
	}
	if f := float64(trues) / float64(all); f < 0.42 || f > 0.58 {
		t.Errorf("%.3f of the labels are true, want about half", f)
	}
}

func TestKarpathyTokens(t *testing.T) {
	c := "two shapes: a small red circle, and a large blue square"
	if got := KarpathyRaw(c); got != "Two shapes: a small red circle, and a large blue square." {
		t.Errorf("raw %q", got)
	}
	if got := strings.Join(KarpathyTokens(c), " "); got != "two shapes a small red circle and a large blue square" {
		t.Errorf("tokens %q", got)
	}
}

func TestFinetuneConfigValidate(t *testing.T) {
	for _, c := range []FinetuneConfig{
		{World: Config{Images: 8}, HeldOut: 1},
		{World: Config{Images: 8}, Noise: 0.5},
		{World: Config{Images: 8}, Questions: 101},
		{World: Config{Images: 8}, Restval: -0.1},
		{World: Config{Images: -1}},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	if err := (FinetuneConfig{World: Config{Images: 8}}).Validate(); err != nil {
		t.Error(err)
	}
}

package downstream

import (
	"path/filepath"
	"testing"

	"github.com/e2evlp/vlp/synth"
)

func synthConfig(images int) synth.FinetuneConfig {
	return synth.FinetuneConfig{World: synth.Config{Seed: 11, Images: images, Width: 48, Height: 48}, Workers: 2}
}

func TestImportSyntheticVQA(t *testing.T) {
	dir := t.TempDir()
	st, err := synth.ExportVQA(synthConfig(60), dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{synth.VQATrain, synth.VQAVal} {
		set, rep, err := ImportVQA(VQAConfig{
			Questions:   filepath.Join(dir, synth.VQAQuestionsFile(sub)),
			Annotations: filepath.Join(dir, synth.VQAAnnotationsFile(sub)),
			ImageDir:    filepath.Join(dir, sub),
		})
		if err != nil {
			t.Fatalf("%s: %v", sub, err)
		}
		if set.Subtype != sub || !set.HasAnswers || len(set.Questions) != st.Questions[sub] {
			t.Errorf("%s: subtype %q, %d questions, exported %d", sub, set.Subtype, len(set.Questions), st.Questions[sub])
		}
		for _, u := range []string{UnitQuestion, UnitAnnotation} {
			if tl := rep.Units[u]; tl.Read != int64(st.Questions[sub]) || tl.Kept != tl.Read {
				t.Errorf("%s: %s %+v", sub, u, tl)
			}
		}
		if tl := rep.Units[UnitImage]; tl.Kept != int64(st.Images[sub]) {
			t.Errorf("%s: images %+v, exported %d", sub, tl, st.Images[sub])
		}
		for _, q := range set.Questions {
			if len(q.Answers) != synth.HumansPerQuestion || q.Image == "" || q.Question == "" || q.AnswerType == "" {
				t.Fatalf("%s: incomplete question %+v", sub, q)
			}
		}
	}
}

func TestAnswerVocabFromSyntheticVQA(t *testing.T) {
	dir := t.TempDir()
	if _, err := synth.ExportVQA(synthConfig(200), dir); err != nil {
		t.Fatal(err)
	}
	set, _, err := ImportVQA(VQAConfig{
		Questions:   filepath.Join(dir, synth.VQAQuestionsFile(synth.VQATrain)),
		Annotations: filepath.Join(dir, synth.VQAAnnotationsFile(synth.VQATrain)),
	})
	if err != nil {
		t.Fatal(err)
	}
	v, err := BuildAnswerVocab(set.Questions, VocabConfig{MinCount: 3})
	if err != nil {
		t.Fatal(err)
	}
	// The world's answers: colours, classes, sizes, yes/no, counts and
	// positions; each must be in the vocabulary at 200 images.
	for _, a := range []string{"red", "circle", "small", "yes", "no", "1", "0"} {
		if v.Index(a) < 0 {
			t.Errorf("%q not in the vocabulary %v", a, v.Answers)
		}
	}
	for i := 1; i < v.Len(); i++ {
		if v.Counts[i] > v.Counts[i-1] {
			t.Fatalf("not ordered by count: %v %v", v.Answers, v.Counts)
		}
	}
	// Every question's soft target gives its majority answer the highest
	// score, and the scores follow the 0.3 / 0.6 / 0.9 / 1 steps.
	checked := 0
	for _, q := range set.Questions {
		ts := v.Targets(q.HumanAnswers())
		best := -1
		for i, s := range ts {
			if !near(s.Score, 0.3) && !near(s.Score, 0.6) && !near(s.Score, 0.9) && !near(s.Score, 1) {
				t.Fatalf("question %d: score %v", q.QuestionID, s.Score)
			}
			if best < 0 || s.Score > ts[best].Score {
				best = i
			}
		}
		if c := v.Index(q.MultipleChoiceAnswer); c >= 0 && best >= 0 {
			checked++
			if ts[best].Score > scoreOf(ts, c)+1e-12 {
				t.Errorf("question %d: majority %q scores %v, %v scores more", q.QuestionID, q.MultipleChoiceAnswer, scoreOf(ts, c), ts[best])
			}
		}
	}
	if checked < len(set.Questions)/2 {
		t.Errorf("only %d of %d questions checked", checked, len(set.Questions))
	}
}

func near(a, b float64) bool { return a > b-1e-12 && a < b+1e-12 }

func scoreOf(ts []AnswerScore, class int) float64 {
	for _, s := range ts {
		if s.Class == class {
			return s.Score
		}
	}
	return 0
}

func TestImportSyntheticNLVR2(t *testing.T) {
	dir := t.TempDir()
	st, err := synth.ExportNLVR2(synthConfig(8*10), dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, split := range synth.NLVR2Splits {
		set, rep, err := ImportNLVR2(NLVR2Config{File: filepath.Join(dir, split+".json"), ImageDir: filepath.Join(dir, "images", split)})
		if err != nil {
			t.Fatalf("%s: %v", split, err)
		}
		if len(set.Examples) != st.Examples[split] {
			t.Errorf("%s: %d examples, exported %d (%+v)", split, len(set.Examples), st.Examples[split], rep.Units)
		}
		trues := 0
		for _, e := range set.Examples {
			if !e.Labelled || e.Split != split || e.Left == "" || e.Right == "" {
				t.Fatalf("%s: %+v", split, e)
			}
			if e.Label {
				trues++
			}
		}
		if trues != st.True[split] {
			t.Errorf("%s: %d true, exported %d", split, trues, st.True[split])
		}
		if tl := rep.Units[UnitImage]; tl.Kept != int64(8*st.Sets[split]) {
			t.Errorf("%s: images %+v", split, tl)
		}
	}
}

func TestImportSyntheticKarpathy(t *testing.T) {
	dir := t.TempDir()
	st, err := synth.ExportKarpathy(synthConfig(50), dir)
	if err != nil {
		t.Fatal(err)
	}
	set, rep, err := ImportKarpathy(KarpathyConfig{File: filepath.Join(dir, synth.KarpathyFile), ImageDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if set.Dataset != "coco" || len(set.Images) != 50 {
		t.Errorf("dataset %q, %d images", set.Dataset, len(set.Images))
	}
	for _, split := range []string{SplitTrain, SplitRestval, SplitVal, SplitTest} {
		if got := len(set.Split(split)); got != st.Images[split] || got == 0 {
			t.Errorf("split %s: %d images, exported %d", split, got, st.Images[split])
		}
	}
	if tl := rep.Units[UnitSentence]; tl.Kept != int64(st.Sentences) || tl.Read != tl.Kept {
		t.Errorf("sentences %+v, exported %d", tl, st.Sentences)
	}
	if tl := rep.Units[UnitImageFile]; tl.Kept != 50 {
		t.Errorf("image files %+v", tl)
	}
}

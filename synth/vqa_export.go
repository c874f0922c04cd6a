package synth

import (
	"fmt"
	"os"
	"path/filepath"
)

// VQA v2's file records, field for field.
type (
	vqaQuestionOut struct {
		ImageID    int    `json:"image_id"`
		Question   string `json:"question"`
		QuestionID int    `json:"question_id"`
	}
	vqaAnswerOut struct {
		Answer     string `json:"answer"`
		Confidence string `json:"answer_confidence"`
		ID         int    `json:"answer_id"`
	}
	vqaAnnotationOut struct {
		QuestionType         string         `json:"question_type"`
		MultipleChoiceAnswer string         `json:"multiple_choice_answer"`
		Answers              []vqaAnswerOut `json:"answers"`
		ImageID              int            `json:"image_id"`
		AnswerType           string         `json:"answer_type"`
		QuestionID           int            `json:"question_id"`
	}
)

// VQA splits and file names, as VQA v2 has them.
const (
	VQATrain = "train2014"
	VQAVal   = "val2014"
)

// VQAQuestionsFile and VQAAnnotationsFile are VQA v2's file names for a
// split (VQATrain, VQAVal).
func VQAQuestionsFile(subtype string) string {
	return "v2_OpenEnded_mscoco_" + subtype + "_questions.json"
}
func VQAAnnotationsFile(subtype string) string { return "v2_mscoco_" + subtype + "_annotations.json" }

// VQAImageFile is COCO 2014's name of an image of a split.
func VQAImageFile(subtype string, imageID int) string {
	return fmt.Sprintf("COCO_%s_%012d.jpg", subtype, imageID)
}

// vqaImageID and vqaQuestionID number image i and its k-th question as
// VQA v2 does (question id = image id × 1000 + k).
func vqaImageID(i int) int       { return i + 1 }
func vqaQuestionID(i, k int) int { return vqaImageID(i)*1000 + k }

// VQAStats counts what ExportVQA wrote.
type VQAStats struct {
	Images, Questions map[string]int // by split
	WrongMajority     int            // questions whose multiple_choice_answer is not the true answer
}

// ExportVQA writes the world as VQA v2: in dir, the questions and
// annotations files of train2014 and val2014 (the last HeldOut of the
// images) and the images, train2014/COCO_train2014_<id>.jpg and
// val2014/…. Every question is about what is drawn; each has ten human
// answers, some wrong (Noise).
func ExportVQA(cfg FinetuneConfig, dir string) (VQAStats, error) {
	if err := cfg.Validate(); err != nil {
		return VQAStats{}, err
	}
	cfg = cfg.WithDefaults()
	st := VQAStats{Images: map[string]int{}, Questions: map[string]int{}}
	n := cfg.World.Images
	train, _ := cfg.heldOut(n)
	type files struct{ q, a *jsonArray }
	out := map[string]files{}
	for _, sub := range []string{VQATrain, VQAVal} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return st, err
		}
		head := fmt.Sprintf(`{"info":{"description":"synthetic shapes world, VQA v2 format","version":"2.0","year":2026},"license":{"name":"generated","url":""},"data_subtype":%q,"data_type":"mscoco",`, sub)
		q, err := createArray(filepath.Join(dir, VQAQuestionsFile(sub)), head+`"task_type":"Open-Ended","questions":`)
		if err != nil {
			return st, err
		}
		a, err := createArray(filepath.Join(dir, VQAAnnotationsFile(sub)), head+`"annotations":`)
		if err != nil {
			return st, err
		}
		out[sub] = files{q, a}
	}
	err := renderEach(cfg, n, func(p Picture) ([]byte, error) { return EncodeJPEG(p.Image) }, func(p Picture, jpg []byte) error {
		sub := VQATrain
		if p.Index >= train {
			sub = VQAVal
		}
		id := vqaImageID(p.Index)
		if err := os.WriteFile(filepath.Join(dir, sub, VQAImageFile(sub, id)), jpg, 0o644); err != nil {
			return err
		}
		st.Images[sub]++
		for k, it := range VQAQuestions(p, cfg.World.Width, cfg.World.Height, cfg.Questions, cfg.Noise, cfg.World.Seed) {
			qid := vqaQuestionID(p.Index, k)
			if err := out[sub].q.add(vqaQuestionOut{ImageID: id, Question: it.Question, QuestionID: qid}); err != nil {
				return err
			}
			ann := vqaAnnotationOut{QuestionType: it.QuestionType, MultipleChoiceAnswer: it.MajorityAnswer(),
				ImageID: id, AnswerType: it.AnswerType, QuestionID: qid}
			for h, a := range it.Humans {
				conf := "yes"
				if a != it.Answer {
					conf = "maybe"
				}
				ann.Answers = append(ann.Answers, vqaAnswerOut{Answer: a, Confidence: conf, ID: h + 1})
			}
			if ann.MultipleChoiceAnswer != it.Answer {
				st.WrongMajority++
			}
			if err := out[sub].a.add(ann); err != nil {
				return err
			}
			st.Questions[sub]++
		}
		return nil
	})
	for _, f := range out {
		for _, a := range []*jsonArray{f.q, f.a} {
			if cerr := a.close("}"); err == nil {
				err = cerr
			}
		}
	}
	return st, err
}

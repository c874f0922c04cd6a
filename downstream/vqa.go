package downstream

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
)

// VQAConfig names the files of one VQA v2 split.
type VQAConfig struct {
	// Questions is the questions file (v2_OpenEnded_mscoco_<subtype>_questions.json).
	Questions string
	// Annotations is the annotations file (v2_mscoco_<subtype>_annotations.json);
	// "" for a split without answers (test-dev, test).
	Annotations string
	// ImageDir is the split's image directory (…/train2014); each image is
	// ImageDir/COCO_<subtype>_<image id, 12 digits>.jpg, as COCO 2014 names
	// them. "" leaves the images unchecked and VQAQuestion.Image empty.
	ImageDir string
	// Subtype overrides the questions file's data_subtype in image names.
	Subtype string
	Limits  Limits
}

// Validate checks c.
func (c VQAConfig) Validate() error {
	if c.Questions == "" {
		return fmt.Errorf("%w: VQAConfig.Questions is empty", ErrInvalidConfig)
	}
	return c.Limits.Validate()
}

// VQAQuestion is one question with, when the split has them, its
// annotation: the human answers as the file gives them (ten in VQA v2).
type VQAQuestion struct {
	QuestionID           uint64      `json:"question_id"`
	ImageID              uint64      `json:"image_id"`
	Image                string      `json:"image,omitempty"` // the image's path; "" when not checked
	Question             string      `json:"question"`
	QuestionType         string      `json:"question_type,omitempty"`
	AnswerType           string      `json:"answer_type,omitempty"` // "yes/no", "number" or "other"
	MultipleChoiceAnswer string      `json:"multiple_choice_answer,omitempty"`
	Answers              []VQAAnswer `json:"answers,omitempty"`
}

// VQAAnswer is one annotator's answer.
type VQAAnswer struct {
	Answer     string `json:"answer"`
	Confidence string `json:"answer_confidence,omitempty"` // "yes", "maybe" or "no"
	ID         int    `json:"answer_id"`
}

// HumanAnswers returns the answers' texts, in file order.
func (q *VQAQuestion) HumanAnswers() []string {
	out := make([]string, len(q.Answers))
	for i, a := range q.Answers {
		out[i] = a.Answer
	}
	return out
}

// VQASet is one imported split.
type VQASet struct {
	Subtype    string        `json:"data_subtype"`
	HasAnswers bool          `json:"has_answers"`
	Questions  []VQAQuestion `json:"questions"` // in the questions file's order
}

// The records as the files spell them.
type (
	vqaQuestionIn struct {
		QuestionID *uint64 `json:"question_id"`
		ImageID    *uint64 `json:"image_id"`
		Question   text    `json:"question"`
	}
	vqaAnnotationIn struct {
		QuestionID           *uint64 `json:"question_id"`
		ImageID              *uint64 `json:"image_id"`
		QuestionType         text    `json:"question_type"`
		AnswerType           text    `json:"answer_type"`
		MultipleChoiceAnswer text    `json:"multiple_choice_answer"`
		Answers              []struct {
			Answer     text `json:"answer"`
			Confidence text `json:"answer_confidence"`
			ID         int  `json:"answer_id"`
		} `json:"answers"`
	}
)

// ImportVQA reads one split. A question is kept when it is well formed,
// its id is not ambiguous, its text is usable, it has a usable annotation
// (when an annotations file is given) and its image is usable (when
// ImageDir is given).
func ImportVQA(cfg VQAConfig) (*VQASet, *Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	lim := cfg.Limits.WithDefaults()
	rep := newReport()
	set := &VQASet{HasAnswers: cfg.Annotations != ""}

	questions := newDedup[uint64, vqaQuestionIn]()
	if err := readVQAFile(cfg.Questions, "questions", lim, rep, &set.Subtype, func(j *jsonFile, e element) error {
		var q vqaQuestionIn
		if bad := decodeRecord(j, e, &q, rep, UnitQuestion); bad {
			return nil
		}
		if q.QuestionID == nil || q.ImageID == nil {
			rep.readSkip(UnitQuestion, SkipRecordMalformed, j.where(e)+": question_id or image_id missing")
			return nil
		}
		rep.read(UnitQuestion, 1)
		return questions.add(*q.QuestionID, q, j.where(e))
	}); err != nil {
		return nil, rep, err
	}
	if cfg.Subtype != "" {
		set.Subtype = cfg.Subtype
	}

	annotations := newDedup[uint64, vqaAnnotationIn]()
	if cfg.Annotations != "" {
		var subtype string
		if err := readVQAFile(cfg.Annotations, "annotations", lim, rep, &subtype, func(j *jsonFile, e element) error {
			var a vqaAnnotationIn
			if bad := decodeRecord(j, e, &a, rep, UnitAnnotation); bad {
				return nil
			}
			if a.QuestionID == nil || a.ImageID == nil {
				rep.readSkip(UnitAnnotation, SkipRecordMalformed, j.where(e)+": question_id or image_id missing")
				return nil
			}
			rep.read(UnitAnnotation, 1)
			return annotations.add(*a.QuestionID, a, j.where(e))
		}); err != nil {
			return nil, rep, err
		}
	}

	// Annotations first: a question needs a usable one.
	usable := map[uint64]*VQAQuestion{} // question id → the annotation's part
	for _, id := range annotations.order {
		c := annotations.items[id]
		if !settle(rep, UnitAnnotation, c, id) {
			continue
		}
		ann, reason, detail := vqaAnnotation(&c.rec, lim)
		if reason != "" {
			rep.skip(UnitAnnotation, reason, 1, c.where+": "+detail)
			continue
		}
		usable[id] = ann
	}

	images := newImageChecker(lim, rep, UnitImage)
	used := map[uint64]bool{}
	for _, id := range questions.order {
		c := questions.items[id]
		if !settle(rep, UnitQuestion, c, id) {
			continue
		}
		q := VQAQuestion{QuestionID: id, ImageID: *c.rec.ImageID}
		s, reason, detail := cleanText(c.rec.Question, lim.MaxTextBytes)
		if reason != "" {
			rep.skip(UnitQuestion, reason, 1, c.where+": "+detail)
			continue
		}
		q.Question = s
		if cfg.Annotations != "" {
			ann := usable[id]
			if ann == nil {
				rep.skip(UnitQuestion, SkipNoAnnotation, 1, fmtWhere(c.where, id))
				continue
			}
			if ann.ImageID != q.ImageID {
				// The annotation speaks of another image: neither is trusted.
				rep.skip(UnitQuestion, SkipIDConflict, 1, fmt.Sprintf("%s: image %d, its annotation says %d", c.where, q.ImageID, ann.ImageID))
				continue
			}
			q.QuestionType, q.AnswerType, q.MultipleChoiceAnswer, q.Answers = ann.QuestionType, ann.AnswerType, ann.MultipleChoiceAnswer, ann.Answers
		}
		if cfg.ImageDir != "" {
			q.Image = filepath.Join(cfg.ImageDir, fmt.Sprintf("COCO_%s_%012d.jpg", set.Subtype, q.ImageID))
			if images.check(q.Image) != "" {
				rep.skip(UnitQuestion, SkipImageUnusable, 1, fmt.Sprintf("%s: image %s", c.where, q.Image))
				continue
			}
		}
		rep.kept(UnitQuestion, 1)
		used[id] = true
		set.Questions = append(set.Questions, q)
	}

	// Every usable annotation is kept with its question or skipped for it.
	for _, id := range annotations.order {
		if usable[id] == nil {
			continue
		}
		switch {
		case used[id]:
			rep.kept(UnitAnnotation, 1)
		case questions.items[id] != nil:
			rep.skip(UnitAnnotation, SkipQuestionLeftOut, 1, fmtWhere(annotations.items[id].where, id))
		default:
			rep.skip(UnitAnnotation, SkipAnnotationNoQuestion, 1, fmtWhere(annotations.items[id].where, id))
		}
	}
	if err := rep.Balanced(); err != nil {
		return nil, rep, err
	}
	if len(set.Questions) == 0 {
		return nil, rep, fmt.Errorf("%w: %s", ErrNothingUsable, cfg.Questions)
	}
	return set, rep, nil
}

// readVQAFile walks a questions or annotations file: its data_subtype
// string and each element of its array key.
func readVQAFile(path, key string, lim Limits, rep *Report, subtype *string, fn func(*jsonFile, element) error) error {
	j, err := openJSON(path, lim)
	if err != nil {
		return err
	}
	defer j.Close()
	seen := false
	err = j.object(map[string]func() error{
		"data_subtype": func() error {
			raw, off, over, err := j.value(1 << 10)
			if err != nil {
				return err
			}
			var t text
			if over || json.Unmarshal(raw, &t) != nil || t.Bad || strings.ContainsAny(t.S, `/\`) {
				return j.errAt(off, "data_subtype is not a plain string")
			}
			*subtype = t.S
			return nil
		},
		key: func() error {
			seen = true
			return j.array(func(e element) error { return fn(j, e) })
		},
	})
	if err != nil {
		return err
	}
	if !seen {
		return fmt.Errorf("%w: %s: no %q array", ErrMalformed, path, key)
	}
	rep.read(UnitFile, 1)
	rep.kept(UnitFile, 1)
	return nil
}

// decodeRecord decodes element e into v; a record too large or of the
// wrong shape is counted as read and skipped under unit u, and bad is true.
func decodeRecord(j *jsonFile, e element, v any, rep *Report, u string) (bad bool) {
	if e.tooLarge {
		rep.readSkip(u, SkipRecordTooLarge, fmt.Sprintf("%s: longer than %d bytes", j.where(e), j.maxRecord))
		return true
	}
	if err := json.Unmarshal(e.raw, v); err != nil {
		rep.readSkip(u, SkipRecordMalformed, fmt.Sprintf("%s: %v", j.where(e), err))
		return true
	}
	return false
}

// vqaAnnotation checks an annotation and returns its usable part.
func vqaAnnotation(a *vqaAnnotationIn, lim Limits) (*VQAQuestion, string, string) {
	if len(a.Answers) == 0 || len(a.Answers) > lim.MaxAnswers {
		return nil, SkipAnswerCount, fmt.Sprintf("%d answers, expected 1 to %d", len(a.Answers), lim.MaxAnswers)
	}
	q := &VQAQuestion{ImageID: *a.ImageID}
	fields := []struct {
		t   text
		out *string
	}{{a.QuestionType, &q.QuestionType}, {a.AnswerType, &q.AnswerType}, {a.MultipleChoiceAnswer, &q.MultipleChoiceAnswer}}
	for _, f := range fields {
		if reason, detail := checkText(f.t, lim.MaxTextBytes); reason != "" {
			return nil, reason, detail
		}
		*f.out = f.t.S
	}
	q.Answers = make([]VQAAnswer, len(a.Answers))
	for i, h := range a.Answers {
		for _, t := range []text{h.Answer, h.Confidence} {
			if reason, detail := checkText(t, lim.MaxTextBytes); reason != "" {
				return nil, SkipBadAnswer, fmt.Sprintf("answer %d: %s", i+1, detail)
			}
		}
		q.Answers[i] = VQAAnswer{Answer: h.Answer.S, Confidence: h.Confidence.S, ID: h.ID}
	}
	return q, "", ""
}

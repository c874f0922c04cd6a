package downstream

import (
	"fmt"
	"sort"
)

// SoftScore is the VQA score of an answer that matches of humans gave:
// min(#matching others / 3, 1) averaged over the humans subsets that leave
// one annotator out, as the official evaluation averages it. With ten
// humans, 0, 1, 2, 3 and ≥ 4 matches score 0, 0.3, 0.6, 0.9 and 1.
func SoftScore(matches, humans int) float64 {
	if humans <= 0 || matches <= 0 {
		return 0
	}
	matches = min(matches, humans)
	// Leaving out one of the matching annotators leaves matches-1 of them.
	without := min(float64(matches-1)/3, 1)
	with := min(float64(matches)/3, 1)
	return (float64(matches)*without + float64(humans-matches)*with) / float64(humans)
}

// VocabConfig says which answers a VQA classifier predicts.
type VocabConfig struct {
	// MinCount keeps the normalised answers given as multiple_choice_answer
	// of at least this many questions; default 9, which gives VQA v2's
	// usual 3,129 answers over train2014 + val2014.
	MinCount int
	// MaxSize keeps at most this many of them, the most frequent first
	// (ties by answer text); 0 means no cap.
	MaxSize int
}

// Validate checks c; MinCount 0 means its default.
func (c VocabConfig) Validate() error {
	if c.MinCount < 0 || c.MaxSize < 0 {
		return fmt.Errorf("%w: VocabConfig MinCount %d and MaxSize %d must be ≥ 0", ErrInvalidConfig, c.MinCount, c.MaxSize)
	}
	return nil
}

// AnswerVocab is the answer classifier's label set: normalised answers,
// the most frequent first.
type AnswerVocab struct {
	Answers []string `json:"answers"`
	Counts  []int    `json:"counts"` // questions whose multiple_choice_answer it is
	index   map[string]int
}

// BuildAnswerVocab counts the normalised multiple_choice_answer of each
// question with annotations and keeps those cfg admits.
func BuildAnswerVocab(questions []VQAQuestion, cfg VocabConfig) (*AnswerVocab, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.MinCount == 0 {
		cfg.MinCount = 9
	}
	counts := map[string]int{}
	for i := range questions {
		if q := &questions[i]; len(q.Answers) > 0 {
			counts[NormalizeAnswer(q.MultipleChoiceAnswer)]++
		}
	}
	v := &AnswerVocab{}
	for a, n := range counts {
		if n >= cfg.MinCount && a != "" {
			v.Answers = append(v.Answers, a)
		}
	}
	sort.Slice(v.Answers, func(i, j int) bool {
		ci, cj := counts[v.Answers[i]], counts[v.Answers[j]]
		if ci != cj {
			return ci > cj
		}
		return v.Answers[i] < v.Answers[j]
	})
	if cfg.MaxSize > 0 && len(v.Answers) > cfg.MaxSize {
		v.Answers = v.Answers[:cfg.MaxSize]
	}
	v.Counts = make([]int, len(v.Answers))
	for i, a := range v.Answers {
		v.Counts[i] = counts[a]
	}
	if len(v.Answers) == 0 {
		return nil, fmt.Errorf("%w: no answer given for %d questions or more", ErrNothingUsable, cfg.MinCount)
	}
	v.buildIndex()
	return v, nil
}

func (v *AnswerVocab) buildIndex() {
	v.index = make(map[string]int, len(v.Answers))
	for i, a := range v.Answers {
		v.index[a] = i
	}
}

// Len is the number of answers.
func (v *AnswerVocab) Len() int { return len(v.Answers) }

// Index returns the class of answer (normalised first), or -1.
func (v *AnswerVocab) Index(answer string) int {
	if v.index == nil {
		v.buildIndex()
	}
	if i, ok := v.index[NormalizeAnswer(answer)]; ok {
		return i
	}
	return -1
}

// AnswerScore is one non-zero entry of a soft target.
type AnswerScore struct {
	Class int     `json:"class"`
	Score float64 `json:"score"`
}

// Targets turns a question's human answers into the soft target of the
// classifier: each distinct normalised answer that is in the vocabulary,
// with SoftScore(#humans who gave it, #humans), ordered by class. Answers
// outside the vocabulary have no class; a question may have no target.
func (v *AnswerVocab) Targets(humans []string) []AnswerScore {
	counts := map[int]int{}
	for _, h := range humans {
		if c := v.Index(h); c >= 0 {
			counts[c]++
		}
	}
	out := make([]AnswerScore, 0, len(counts))
	for c, n := range counts {
		out = append(out, AnswerScore{Class: c, Score: SoftScore(n, len(humans))})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Class < out[j].Class })
	return out
}

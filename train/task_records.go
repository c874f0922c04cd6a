package train

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/e2evlp/vlp/downstream"
	"github.com/e2evlp/vlp/worker"
)

// TaskRecords are a fine-tuning task's examples, numbered: the records file that
// `vlp downstream import --records` writes (a downstream.VQASet, NLVR2Set or KarpathySet as JSON),
// read once. Example k is
//
//	vqa        the k-th question with answers (file order)
//	nlvr2      the k-th labelled statement with its image pair (file order)
//	caption    the k-th (image, sentence) of the train and restval images (file order)
//	retrieval  the same numbering as caption
//
// so that the coordinator's work units cut them as they cut pretraining's pairs.
type TaskRecords struct {
	Task Task
	VQA  []downstream.VQAQuestion
	// Answers is the VQA answer vocabulary: the normalised multiple_choice_answer given at least
	// downstream.VocabConfig's MinCount (9) times in the records, most frequent first.
	Answers *downstream.AnswerVocab
	NLVR2   []downstream.NLVR2Example
	// Captions are the Karpathy (image, sentence) pairs, each with its image.
	Captions []KarpathyPair
}

// KarpathyPair is one sentence of one Karpathy image.
type KarpathyPair struct {
	ImgID    int64
	Image    string // the image's path
	Sentence string // as written (Raw)
}

// Len is the number of examples.
func (r *TaskRecords) Len() int {
	switch r.Task {
	case TaskVQA:
		return len(r.VQA)
	case TaskNLVR2:
		return len(r.NLVR2)
	default:
		return len(r.Captions)
	}
}

// LoadTaskRecords reads the records file of task at path; a VQA answer is in the vocabulary when
// it is the majority answer of answerMinCount questions (0: downstream's default, 9).
func LoadTaskRecords(task Task, path string, answerMinCount int) (*TaskRecords, error) {
	r, err := loadRecords(task, path, []string{downstream.SplitTrain, downstream.SplitRestval})
	if err != nil || task != TaskVQA {
		return r, err
	}
	if r.Answers, err = downstream.BuildAnswerVocab(r.VQA, downstream.VocabConfig{MinCount: answerMinCount}); err != nil {
		return nil, fmt.Errorf("%w: records %s: answers: %v", worker.ErrConfig, path, err)
	}
	return r, nil
}

// LoadHeldOutRecords reads held-out records of task at path for evaluation: a VQA or NLVR2 split
// as imported (scored with answers, the training job's vocabulary), or the test images of a
// Karpathy file.
func LoadHeldOutRecords(task Task, path string, answers *downstream.AnswerVocab) (*TaskRecords, error) {
	r, err := loadRecords(task, path, []string{downstream.SplitTest})
	if err != nil {
		return nil, err
	}
	r.Answers = answers
	return r, nil
}

// loadRecords reads the records of task at path (Karpathy images of splits).
func loadRecords(task Task, path string, splits []string) (*TaskRecords, error) {
	if !task.FineTuning() {
		return nil, fmt.Errorf("%w: records of task %q: pretraining reads shards", worker.ErrConfig, task)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("train: records: %w", err)
	}
	r := &TaskRecords{Task: task}
	bad := func(err error) (*TaskRecords, error) {
		return nil, fmt.Errorf("%w: records %s for task %s: %v", worker.ErrConfig, path, task, err)
	}
	switch task {
	case TaskVQA:
		var set downstream.VQASet
		if err := json.Unmarshal(b, &set); err != nil {
			return bad(err)
		}
		for _, q := range set.Questions {
			if len(q.Answers) > 0 && q.Image != "" {
				r.VQA = append(r.VQA, q)
			}
		}
		if len(r.VQA) == 0 {
			return bad(fmt.Errorf("no question with answers and an image (import with --annotations and --images)"))
		}
	case TaskNLVR2:
		var set downstream.NLVR2Set
		if err := json.Unmarshal(b, &set); err != nil {
			return bad(err)
		}
		for _, e := range set.Examples {
			if e.Labelled && e.Left != "" && e.Right != "" {
				r.NLVR2 = append(r.NLVR2, e)
			}
		}
		if len(r.NLVR2) == 0 {
			return bad(fmt.Errorf("no labelled statement with both images (import with --images)"))
		}
	case TaskCaption, TaskRetrieval:
		var set downstream.KarpathySet
		if err := json.Unmarshal(b, &set); err != nil {
			return bad(err)
		}
		for _, im := range set.Split(splits...) {
			if im.Image == "" {
				continue
			}
			for _, s := range im.Sentences {
				r.Captions = append(r.Captions, KarpathyPair{ImgID: im.ImgID, Image: im.Image, Sentence: s.Raw})
			}
		}
		if len(r.Captions) == 0 {
			return bad(fmt.Errorf("no %v image with sentences and an image path (import with --images)", splits))
		}
	}
	return r, nil
}

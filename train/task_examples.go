package train

import (
	"bytes"
	"fmt"
	"image"
	_ "image/jpeg" // COCO's images
	_ "image/png"  // NLVR2's images
	"os"
	"sort"
	"sync"

	"github.com/e2evlp/vlp/data"
	"github.com/e2evlp/vlp/model"
	"github.com/e2evlp/vlp/sharding"
	"github.com/e2evlp/vlp/worker"
)

// TaskExamples serves a fine-tuning task's examples as batches: unit u's examples are positions
// u·PerUnit… of the epoch's order, a permutation of the records by (Seed, epoch), as
// SynthExamples orders the synthetic world's pairs. Images are read from the records' paths,
// decoded once and kept (up to taskImageCache of them), and resized to the job's square side.
type TaskExamples struct {
	Records   *TaskRecords
	Tokenizer *data.Tokenizer
	Data      data.Config // the job's (image side, text lengths); captioning builds its batches with it
	Seed      uint64
	PerUnit   uint32

	mu      sync.Mutex
	order   []int
	epoch   uint64
	ordered bool
	images  map[string]image.Image
	recent  []string
}

// taskImageCache bounds the decoded images kept.
const taskImageCache = 4096

// taskBatch is one step's host batch of a fine-tuning task.
type taskBatch struct {
	rows     int
	pairs    *model.PairBatch       // vqa, retrieval: [CLS] text [SEP] with its image
	targets  [][]model.AnswerTarget // vqa: each question's soft scores
	imageIDs []uint64               // retrieval: rows of one image never mine each other
	nlvr2    *model.NLVR2Batch
	caption  *data.Batch // caption: images and teacher-forced captions
}

// Positions maps pairs to example indices.
func (s *TaskExamples) Positions(pairs []worker.Pair) ([]int, error) {
	out := make([]int, 0, len(pairs))
	for _, p := range pairs {
		if !s.ordered || p.Epoch != s.epoch {
			s.order, s.epoch, s.ordered = s.epochOrder(p.Epoch), p.Epoch, true
		}
		k := worker.PairID(p, s.PerUnit)
		if k >= uint64(len(s.order)) {
			return nil, fmt.Errorf("%w: example %d of epoch %d: the records have %d", worker.ErrState, k, p.Epoch, len(s.order))
		}
		out = append(out, s.order[k])
	}
	return out, nil
}

// epochOrder is the records' permutation for epoch.
func (s *TaskExamples) epochOrder(epoch uint64) []int {
	n := s.Records.Len()
	idx, keys := make([]int, n), make([]uint64, n)
	for i := range idx {
		idx[i], keys[i] = i, mixSeed(s.Seed^0x5851f42d4c957f2d, epoch, uint64(i))
	}
	sort.Slice(idx, func(a, b int) bool { return keys[idx[a]] < keys[idx[b]] })
	return idx
}

// Batch builds the batch of pairs (epoch of the first pair seeds captioning's batch).
func (s *TaskExamples) Batch(pairs []worker.Pair) (*taskBatch, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pos, err := s.Positions(pairs)
	if err != nil {
		return nil, err
	}
	return s.build(pos, pairs[0].Epoch)
}

// build makes the batch of examples pos.
func (s *TaskExamples) build(pos []int, epoch uint64) (*taskBatch, error) {
	r := s.Records
	b := &taskBatch{rows: len(pos)}
	var err error
	switch r.Task {
	case TaskVQA:
		texts, paths := make([]string, len(pos)), make([]string, len(pos))
		for i, k := range pos {
			q := &r.VQA[k]
			texts[i], paths[i] = q.Question, q.Image
			var row []model.AnswerTarget
			for _, t := range r.Answers.Targets(q.HumanAnswers()) {
				row = append(row, model.AnswerTarget(t))
			}
			b.targets = append(b.targets, row)
		}
		b.pairs, err = s.pairBatch(texts, paths)
	case TaskRetrieval:
		texts, paths := make([]string, len(pos)), make([]string, len(pos))
		for i, k := range pos {
			c := r.Captions[k]
			texts[i], paths[i] = c.Sentence, c.Image
			b.imageIDs = append(b.imageIDs, uint64(c.ImgID))
		}
		b.pairs, err = s.pairBatch(texts, paths)
	case TaskNLVR2:
		b.nlvr2, err = s.nlvr2Batch(pos)
	case TaskCaption:
		b.caption, err = s.captionBatch(pos, epoch)
	}
	if err != nil {
		return nil, err
	}
	return b, nil
}

// pairBatch is texts with the images at paths, row by row.
func (s *TaskExamples) pairBatch(texts, paths []string) (*model.PairBatch, error) {
	side, L := s.Data.Image.Square, s.Data.MaxTextLen
	B := len(texts)
	pb := &model.PairBatch{Size: B, Height: side, Width: side, SeqLen: L,
		Images: make([]float32, B*3*side*side), PixelMask: make([]bool, B*side*side),
		TokenIDs: make([]int64, B*L), TokenMask: make([]bool, B*L)}
	for i := range texts {
		if err := s.pixels(paths[i], pb.Images[i*3*side*side:(i+1)*3*side*side]); err != nil {
			return nil, err
		}
		if err := s.tokens(texts[i], pb.TokenIDs[i*L:(i+1)*L], pb.TokenMask[i*L:(i+1)*L]); err != nil {
			return nil, err
		}
	}
	return pb, nil
}

// nlvr2Batch is the statements of pos with their left and right images.
func (s *TaskExamples) nlvr2Batch(pos []int) (*model.NLVR2Batch, error) {
	side, L := s.Data.Image.Square, s.Data.MaxTextLen
	B, img := len(pos), 3*side*side
	nb := &model.NLVR2Batch{Size: B, Height: side, Width: side, SeqLen: L,
		Left: make([]float32, B*img), Right: make([]float32, B*img),
		LeftMask: make([]bool, B*side*side), RightMask: make([]bool, B*side*side),
		TokenIDs: make([]int64, B*L), TokenMask: make([]bool, B*L), Labels: make([]int64, B)}
	for i, k := range pos {
		e := &s.Records.NLVR2[k]
		if err := s.pixels(e.Left, nb.Left[i*img:(i+1)*img]); err != nil {
			return nil, err
		}
		if err := s.pixels(e.Right, nb.Right[i*img:(i+1)*img]); err != nil {
			return nil, err
		}
		if err := s.tokens(e.Sentence, nb.TokenIDs[i*L:(i+1)*L], nb.TokenMask[i*L:(i+1)*L]); err != nil {
			return nil, err
		}
		if e.Label {
			nb.Labels[i] = 1
		}
	}
	return nb, nil
}

// captionBatch builds the images and captions of pos through the data pipeline (no ITM
// negatives: every caption is its image's).
func (s *TaskExamples) captionBatch(pos []int, epoch uint64) (*data.Batch, error) {
	ex := make([]data.Example, len(pos))
	for i, k := range pos {
		c := s.Records.Captions[k]
		im, err := s.decoded(c.Image)
		if err != nil {
			return nil, err
		}
		meta := &sharding.SampleMeta{Key: c.Image, ImageID: uint64(c.ImgID), Width: im.Bounds().Dx(), Height: im.Bounds().Dy(),
			Texts: []sharding.Text{{PairID: uint64(k), Kind: "caption", Text: c.Sentence}}}
		ex[i] = data.Example{Shard: "karpathy", Meta: meta, Image: im}
	}
	dc := s.Data
	dc.BatchSize, dc.Seed, dc.Epoch, dc.ITMNegProb = len(ex), s.Seed, epoch, 0
	return data.BuildBatch(dc, s.Tokenizer, ex)
}

// pixels writes the image at path, resized to the job's square side and normalised, into dst
// [3,side,side].
func (s *TaskExamples) pixels(path string, dst []float32) error {
	im, err := s.decoded(path)
	if err != nil {
		return err
	}
	side := s.Data.Image.Square
	px := data.ResizeNormalize(data.ToRGB(im), side, side) // [3,side,side]
	copy(dst, px.Pix)
	return nil
}

// tokens writes [CLS] text [SEP] and its padding mask into ids and mask (length L).
func (s *TaskExamples) tokens(text string, ids []int64, mask []bool) error {
	enc, err := s.Tokenizer.Encode(text, len(ids))
	if err != nil {
		return fmt.Errorf("train: tokenize %q: %w", text, err)
	}
	for k := range ids {
		if k < len(enc) {
			ids[k], mask[k] = enc[k], false
		} else {
			ids[k], mask[k] = 0, true
		}
	}
	return nil
}

// decoded is the image at path, decoded (and kept).
func (s *TaskExamples) decoded(path string) (image.Image, error) {
	if im, ok := s.images[path]; ok {
		return im, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("train: image: %w", err)
	}
	im, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("train: image %s: %w", path, err)
	}
	if s.images == nil {
		s.images = map[string]image.Image{}
	}
	if len(s.recent) >= taskImageCache {
		delete(s.images, s.recent[0])
		s.recent = s.recent[1:]
	}
	s.images[path] = im
	s.recent = append(s.recent, path)
	return im, nil
}

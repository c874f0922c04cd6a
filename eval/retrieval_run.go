package eval

import (
	"fmt"

	"github.com/e2evlp/vlp/data"
	"github.com/e2evlp/vlp/sharding"
	"github.com/e2evlp/vlp/torch"
)

// retrieval scores every image of rows with every row's text (N² pairs,
// in batches) and ranks them.
func (r *runner) retrieval(rows []data.Example) (Retrieval, error) {
	n := len(rows)
	scores := make([][]float64, n) // [image][text]
	for i := range scores {
		scores[i] = make([]float64, n)
	}
	pairs := make([]data.Example, 0, n*n) // image i with text j at i·n+j
	for _, img := range rows {
		for _, txt := range rows {
			meta := *img.Meta
			meta.Texts = []sharding.Text{txt.Meta.Texts[txt.Text]}
			e := img
			e.Meta, e.Text = &meta, 0
			pairs = append(pairs, e)
		}
	}
	for lo := 0; lo < len(pairs); lo += r.cfg.Batch {
		chunk := pairs[lo:min(lo+r.cfg.Batch, len(pairs))]
		b, err := data.BuildBatch(r.dataConfig(len(chunk)), r.cfg.Tokenizer, chunk)
		if err != nil {
			return Retrieval{}, fmt.Errorf("eval: retrieval batch: %w", err)
		}
		s := torch.NewScope()
		_, out, err := r.forward(s, b)
		if err != nil {
			s.Close()
			return Retrieval{}, fmt.Errorf("eval: retrieval forward: %w", err)
		}
		for k, p := range r.m.ITMScores(out) {
			scores[(lo+k)/n][(lo+k)%n] = p
		}
		s.Close()
	}
	return RankRetrieval(scores)
}

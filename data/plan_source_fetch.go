package data

import (
	"fmt"

	"github.com/e2evlp/vlp/sharding"
)

// Example reads the pair ref addresses, independently of the order Next
// serves (random access for a consumer that knows which pairs it needs, such
// as a training worker assembling each step's batch from its leased units).
// It shares Next's open shards and sample cache.
func (s *PlanSource) Example(ref sharding.PairRef) (Example, error) {
	smp, err := s.sample(ref.Shard, ref.Sample)
	if err != nil {
		return Example{}, err
	}
	if int(ref.Text) >= len(smp.meta.Texts) {
		return Example{}, fmt.Errorf("%w: shard %s sample %s: text %d of %d", ErrBadExample,
			s.m.Shards[ref.Shard].Name, smp.meta.Key, ref.Text, len(smp.meta.Texts))
	}
	return Example{Shard: s.m.Shards[ref.Shard].Name, Meta: smp.meta, Text: int(ref.Text), JPEG: smp.jpeg}, nil
}

package train

import (
	"fmt"
	"github.com/e2evlp/vlp/worker"
	"sync"

	"github.com/e2evlp/vlp/data"
	"github.com/e2evlp/vlp/sharding"
)

// ExampleSource maps a job's pairs (epoch, unit, offset) to the examples
// the data pipeline collates. Calls come from one goroutine at a time.
type ExampleSource interface {
	Examples(pairs []worker.Pair) ([]data.Example, error)
}

// SynthExamples serves the in-memory synthetic world: unit u's pairs are
// positions u·PerUnit… of the world's shuffled order for the epoch.
type SynthExamples struct {
	World   *data.SynthWorld
	Seed    uint64
	PerUnit uint32

	order   []int
	epoch   uint64
	ordered bool
}

var _ ExampleSource = (*SynthExamples)(nil)

// Examples implements ExampleSource.
func (s *SynthExamples) Examples(pairs []worker.Pair) ([]data.Example, error) {
	ex := make([]data.Example, 0, len(pairs))
	for _, p := range pairs {
		if !s.ordered || p.Epoch != s.epoch {
			s.order, s.epoch, s.ordered = s.World.Order(s.Seed, p.Epoch), p.Epoch, true
		}
		k := worker.PairID(p, s.PerUnit)
		if k >= uint64(len(s.order)) {
			return nil, fmt.Errorf("%w: pair %d of epoch %d: the data has %d pairs", worker.ErrState, k, p.Epoch, len(s.order))
		}
		ex = append(ex, s.World.Examples[s.order[k]])
	}
	return ex, nil
}

// ShardExamples serves pairs out of shards (`vlp shard build`): unit u of
// epoch e is unit u of the epoch plan sharding.NewPlan(manifest, seed, e,
// perUnit), read by random access through data.PlanSource. The job's units
// must be the plan's: Units.Pairs = the manifest's pairs, Units.PerUnit =
// perUnit.
type ShardExamples struct {
	mu      sync.Mutex
	src     *data.PlanSource
	m       *sharding.Manifest
	seed    uint64
	perUnit int
	plans   map[uint64]*sharding.Plan
	units   map[[2]uint64][]sharding.PairRef // (epoch, unit) → refs, the recent ones
	recent  [][2]uint64
}

var _ ExampleSource = (*ShardExamples)(nil)

// shardUnitCache bounds the units whose pair lists are kept (a rank holds
// at most one partly consumed unit at a step boundary, plus what it leases).
const shardUnitCache = 64

// NewShardExamples reads the shards of m in dir.
func NewShardExamples(dir string, m *sharding.Manifest, seed uint64, perUnit int) (*ShardExamples, error) {
	if perUnit < 1 {
		return nil, fmt.Errorf("%w: pairs per unit %d < 1", worker.ErrConfig, perUnit)
	}
	if m == nil || m.Pairs == 0 {
		return nil, fmt.Errorf("%w: the manifest has no pairs", worker.ErrConfig)
	}
	return &ShardExamples{
		src: data.NewPlanSource(dir, m, nil), m: m, seed: seed, perUnit: perUnit,
		plans: map[uint64]*sharding.Plan{}, units: map[[2]uint64][]sharding.PairRef{},
	}, nil
}

// Manifest is the dataset's manifest.
func (s *ShardExamples) Manifest() *sharding.Manifest { return s.m }

// Ref is the plan position of p.
func (s *ShardExamples) Ref(p worker.Pair) (sharding.PairRef, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ref(p)
}

func (s *ShardExamples) ref(p worker.Pair) (sharding.PairRef, error) {
	key := [2]uint64{p.Epoch, uint64(p.Unit)}
	refs, ok := s.units[key]
	if !ok {
		plan, ok := s.plans[p.Epoch]
		if !ok {
			var err error
			if plan, err = sharding.NewPlan(s.m, s.seed, int(p.Epoch), s.perUnit); err != nil {
				return sharding.PairRef{}, err
			}
			s.plans = map[uint64]*sharding.Plan{p.Epoch: plan} // one epoch at a time
		}
		var err error
		if refs, err = plan.Unit(int(p.Unit)); err != nil {
			return sharding.PairRef{}, fmt.Errorf("%w: epoch %d: %v", worker.ErrState, p.Epoch, err)
		}
		if len(s.recent) >= shardUnitCache {
			delete(s.units, s.recent[0])
			s.recent = s.recent[1:]
		}
		s.units[key] = refs
		s.recent = append(s.recent, key)
	}
	if int(p.Offset) >= len(refs) {
		return sharding.PairRef{}, fmt.Errorf("%w: pair %d of unit %d of epoch %d: the unit has %d", worker.ErrState, p.Offset, p.Unit, p.Epoch, len(refs))
	}
	return refs[p.Offset], nil
}

// Examples implements ExampleSource.
func (s *ShardExamples) Examples(pairs []worker.Pair) ([]data.Example, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ex := make([]data.Example, 0, len(pairs))
	for _, p := range pairs {
		ref, err := s.ref(p)
		if err != nil {
			return nil, err
		}
		e, err := s.src.Example(ref)
		if err != nil {
			return nil, err
		}
		ex = append(ex, e)
	}
	return ex, nil
}

// Close closes the shard files.
func (s *ShardExamples) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.src.Close()
}

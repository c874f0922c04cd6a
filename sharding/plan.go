package sharding

import (
	"fmt"
	"math/bits"
	"sort"
)

// PairRef addresses one image-text pair by position: text Text of sample
// Sample (tar order, from 0) of shard Shard (manifest order, from 0). The
// pair's stable id is Texts[Text].PairID of that sample.
type PairRef struct {
	Shard  uint32
	Sample uint32
	Text   uint32
}

// Plan is the epoch plan: every pair of the manifest, in an order shuffled
// by (seed, epoch), cut into work units of UnitSize pairs (the last may be
// shorter), numbered 0..Units()-1.
//
// A Plan is a pure function of (manifest layout, seed, epoch, unit size):
// it stores no permutation, only the layout's prefix sums, and computes any
// unit on demand, so a coordinator can hand out unit u of a 6M-pair epoch
// without materialising the epoch. Pairs are numbered 0..Pairs()-1 in
// manifest order (shard, sample, text); the shuffle is a keyed bijection on
// those numbers (a Feistel network with cycle walking), so each pair
// appears in exactly one unit, exactly once.
//
// A Plan is immutable and safe for concurrent use.
type Plan struct {
	seed     uint64
	epoch    int
	unitSize int
	pairs    uint64
	key      uint64
	half     uint       // bits per Feistel half
	shardEnd []uint64   // shardEnd[s] = pairs in shards 0..s
	sampEnd  [][]uint64 // sampEnd[s][j] = pairs in samples 0..j of shard s
}

// feistelRounds is enough rounds for a keyed hash round function to give a
// well-mixed permutation.
const feistelRounds = 6

// NewPlan builds the plan of epoch for the manifest's layout.
func NewPlan(m *Manifest, seed uint64, epoch, unitSize int) (*Plan, error) {
	if unitSize < 1 {
		return nil, fmt.Errorf("%w: unit size %d < 1", ErrInvalidPlan, unitSize)
	}
	if epoch < 0 {
		return nil, fmt.Errorf("%w: epoch %d < 0", ErrInvalidPlan, epoch)
	}
	p := &Plan{seed: seed, epoch: epoch, unitSize: unitSize}
	for _, s := range m.Shards {
		ends := make([]uint64, len(s.SamplePairs))
		for j, n := range s.SamplePairs {
			if n < 0 {
				return nil, fmt.Errorf("%w: shard %s has a negative pair count", ErrInvalidPlan, s.Name)
			}
			p.pairs += uint64(n)
			ends[j] = p.pairs
		}
		p.shardEnd = append(p.shardEnd, p.pairs)
		p.sampEnd = append(p.sampEnd, ends)
	}
	if p.pairs == 0 {
		return nil, fmt.Errorf("%w: the manifest has no pairs", ErrInvalidPlan)
	}
	b := uint(bits.Len64(p.pairs - 1))
	p.half = max(1, (b+1)/2)
	p.key = mix64(mix64(seed^0x6a09e667f3bcc908) ^ uint64(epoch)*0x9e3779b97f4a7c15)
	return p, nil
}

// Pairs is the number of pairs in the epoch.
func (p *Plan) Pairs() uint64 { return p.pairs }

// Units is the number of work units.
func (p *Plan) Units() int { return int((p.pairs + uint64(p.unitSize) - 1) / uint64(p.unitSize)) }

// UnitSize is the number of pairs per unit (the last may hold fewer).
func (p *Plan) UnitSize() int { return p.unitSize }

// Epoch is the epoch the plan orders.
func (p *Plan) Epoch() int { return p.epoch }

// Unit returns the pairs of unit u in the order they are to be consumed.
func (p *Plan) Unit(u int) ([]PairRef, error) {
	if u < 0 || u >= p.Units() {
		return nil, fmt.Errorf("%w: unit %d outside [0, %d)", ErrInvalidPlan, u, p.Units())
	}
	lo := uint64(u) * uint64(p.unitSize)
	hi := min(p.pairs, lo+uint64(p.unitSize))
	out := make([]PairRef, 0, hi-lo)
	for pos := lo; pos < hi; pos++ {
		out = append(out, p.Locate(p.permute(pos)))
	}
	return out, nil
}

// Locate turns a pair number (manifest order) into its position.
func (p *Plan) Locate(n uint64) PairRef {
	s := sort.Search(len(p.shardEnd), func(i int) bool { return p.shardEnd[i] > n })
	base := uint64(0)
	if s > 0 {
		base = p.shardEnd[s-1]
	}
	ends := p.sampEnd[s]
	j := sort.Search(len(ends), func(i int) bool { return ends[i] > n })
	start := base
	if j > 0 {
		start = ends[j-1]
	}
	return PairRef{Shard: uint32(s), Sample: uint32(j), Text: uint32(n - start)}
}

// permute maps a position in the epoch to a pair number: a bijection on
// [0, pairs). The Feistel network permutes [0, 2^(2·half)); values that fall
// outside [0, pairs) are walked through it again until they land inside,
// which keeps it a bijection (at most 4x the domain, so few walks).
func (p *Plan) permute(x uint64) uint64 {
	for {
		x = p.feistel(x)
		if x < p.pairs {
			return x
		}
	}
}

func (p *Plan) feistel(x uint64) uint64 {
	mask := uint64(1)<<p.half - 1
	l, r := x>>p.half, x&mask
	for round := uint64(0); round < feistelRounds; round++ {
		l, r = r, l^(mix64(p.key^round<<56^r)&mask)
	}
	return l<<p.half | r
}

// mix64 is splitmix64's finaliser.
func mix64(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

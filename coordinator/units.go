package coordinator

import "fmt"

// UnitSource tells the leader the work units of an epoch. The FSM never calls it: the leader asks
// it when an epoch opens and writes the answer into the Raft log, so followers, snapshots and
// replays never depend on how units are computed.
//
// EpochUnits must be a pure function of (spec, epoch): the pair count of every unit of that epoch,
// in unit-id order (ids 0..U-1). The sharding package's epoch plan is one implementation; SpecUnits,
// which reads JobSpec.Units, is the default.
type UnitSource interface {
	EpochUnits(spec *JobSpec, epoch uint64) ([]uint32, error)
}

// SpecUnits is the UnitSource that reads JobSpec.Units: the same units every epoch.
type SpecUnits struct{}

var _ UnitSource = SpecUnits{}

// EpochUnits implements UnitSource.
func (SpecUnits) EpochUnits(spec *JobSpec, epoch uint64) ([]uint32, error) {
	u := spec.Units
	if len(u.Sizes) > 0 {
		return append([]uint32(nil), u.Sizes...), nil
	}
	if u.Pairs < 1 || u.PerUnit < 1 {
		return nil, fmt.Errorf("%w: units: the spec gives no units and no UnitSource is configured", ErrInvalidSpec)
	}
	n := (u.Pairs + int64(u.PerUnit) - 1) / int64(u.PerUnit)
	sizes := make([]uint32, n)
	for i := range sizes {
		sizes[i] = uint32(u.PerUnit)
	}
	if rem := u.Pairs % int64(u.PerUnit); rem != 0 {
		sizes[n-1] = uint32(rem)
	}
	return sizes, nil
}

// UnitFunc adapts a function to UnitSource.
type UnitFunc func(spec *JobSpec, epoch uint64) ([]uint32, error)

// EpochUnits implements UnitSource.
func (f UnitFunc) EpochUnits(spec *JobSpec, epoch uint64) ([]uint32, error) { return f(spec, epoch) }

// Run is a run-length-encoded stretch of units with the same pair count; an epoch's units travel
// in the log as runs, so a uniform epoch of 100,000 units is one small entry.
type Run struct {
	Pairs uint32 `json:"p"`
	Count uint32 `json:"n"`
}

// encodeRuns run-length encodes unit sizes.
func encodeRuns(sizes []uint32) []Run {
	var runs []Run
	for _, s := range sizes {
		if n := len(runs); n > 0 && runs[n-1].Pairs == s {
			runs[n-1].Count++
			continue
		}
		runs = append(runs, Run{Pairs: s, Count: 1})
	}
	return runs
}

// decodeRuns expands runs, refusing more than maxUnitsPerEpoch units or empty units.
func decodeRuns(runs []Run) ([]uint32, error) {
	total := 0
	for _, r := range runs {
		if r.Pairs == 0 || r.Count == 0 {
			return nil, fmt.Errorf("%w: a run of units with 0 pairs or 0 units", ErrBadRequest)
		}
		total += int(r.Count)
		if total > maxUnitsPerEpoch {
			return nil, fmt.Errorf("%w: more than %d units in an epoch", ErrBadRequest, maxUnitsPerEpoch)
		}
	}
	if total == 0 {
		return nil, fmt.Errorf("%w: an epoch with no units", ErrBadRequest)
	}
	sizes := make([]uint32, 0, total)
	for _, r := range runs {
		for i := uint32(0); i < r.Count; i++ {
			sizes = append(sizes, r.Pairs)
		}
	}
	return sizes, nil
}

package coordinator

import "testing"

func TestDbgSim(t *testing.T) {
	spec := simSpec()
	for seed := int64(1); seed <= 12; seed++ {
		s := newSim(t, seed, spec)
		s.run(true)
		count := map[pair][]uint64{}
		for st, ps := range s.timeline {
			for _, p := range ps {
				count[p] = append(count[p], st)
			}
		}
		for p, sts := range count {
			if len(sts) > 1 {
				t.Logf("seed %d pair %+v steps %v events %v", seed, p, sts, s.events)
				break
			}
		}
	}
}

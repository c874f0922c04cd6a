package worker

import (
	"reflect"
	"testing"

	"github.com/e2evlp/vlp/coordinator"
)

func lease(unit uint32, pairs, offset uint32) coordinator.UnitLease {
	return coordinator.UnitLease{Epoch: 1, Unit: unit, Pairs: pairs, Offset: offset}
}

func TestUnitQueue(t *testing.T) {
	tests := []struct {
		name      string
		units     []coordinator.UnitLease
		take      int
		segs      []Segment
		done      []coordinator.DoneUnit
		cursor    coordinator.RankCursor
		remaining int
	}{
		{"within one unit", []coordinator.UnitLease{lease(3, 8, 2)}, 4,
			[]Segment{{1, 3, 2, 4}}, nil, coordinator.RankCursor{Rank: 1, WorkerID: 9, Epoch: 1, Unit: 3, Offset: 6}, 2},
		{"finishes a unit exactly", []coordinator.UnitLease{lease(3, 8, 4)}, 4,
			[]Segment{{1, 3, 4, 4}}, []coordinator.DoneUnit{{Epoch: 1, Unit: 3}}, coordinator.RankCursor{Rank: 1, WorkerID: 9, Unit: -1}, 0},
		{"spans two units", []coordinator.UnitLease{lease(3, 8, 6), lease(5, 8, 0)}, 5,
			[]Segment{{1, 3, 6, 2}, {1, 5, 0, 3}}, []coordinator.DoneUnit{{Epoch: 1, Unit: 3}}, coordinator.RankCursor{Rank: 1, WorkerID: 9, Epoch: 1, Unit: 5, Offset: 3}, 5},
		{"runs short", []coordinator.UnitLease{lease(3, 8, 6)}, 5,
			[]Segment{{1, 3, 6, 2}}, []coordinator.DoneUnit{{Epoch: 1, Unit: 3}}, coordinator.RankCursor{Rank: 1, WorkerID: 9, Unit: -1}, 0},
		{"empty", nil, 3, nil, nil, coordinator.RankCursor{Rank: 1, WorkerID: 9, Unit: -1}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var q unitQueue
			q.push(tc.units...)
			segs := q.peek(tc.take)
			if !reflect.DeepEqual(segs, tc.segs) {
				t.Fatalf("peek: %v, want %v", segs, tc.segs)
			}
			if n := len(pairsOf(segs)); n != min(tc.take, q.remaining()) {
				t.Fatalf("%d pairs from %d wanted with %d left", n, tc.take, q.remaining())
			}
			done := q.consume(segs)
			if !reflect.DeepEqual(done, tc.done) {
				t.Fatalf("done: %v, want %v", done, tc.done)
			}
			if c := q.cursor(1, 9); c != tc.cursor {
				t.Fatalf("cursor %+v, want %+v", c, tc.cursor)
			}
			if r := q.remaining(); r != tc.remaining {
				t.Fatalf("remaining %d, want %d", r, tc.remaining)
			}
		})
	}
}

// A rank that missed a committed step moves its queue to the cursor the
// others recorded for it.
func TestUnitQueueAdvanceTo(t *testing.T) {
	tests := []struct {
		name   string
		cursor coordinator.RankCursor
		want   []coordinator.UnitLease
	}{
		{"into the second unit", coordinator.RankCursor{Epoch: 1, Unit: 5, Offset: 3}, []coordinator.UnitLease{lease(5, 8, 3)}},
		{"within the first", coordinator.RankCursor{Epoch: 1, Unit: 3, Offset: 7}, []coordinator.UnitLease{lease(3, 8, 7), lease(5, 8, 0)}},
		{"everything consumed", coordinator.RankCursor{Unit: -1}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var q unitQueue
			q.push(lease(3, 8, 6), lease(5, 8, 0))
			q.advanceTo(tc.cursor)
			if !reflect.DeepEqual(q.units, tc.want) {
				t.Fatalf("queue %v, want %v", q.units, tc.want)
			}
		})
	}
}

func TestRankBatch(t *testing.T) {
	for _, tc := range []struct{ global, size, want0, wantLast int }{{8, 2, 4, 4}, {12, 5, 3, 2}, {3, 4, 1, 0}} {
		sum := 0
		for r := range tc.size {
			sum += rankBatch(tc.global, tc.size, r)
		}
		if sum != tc.global || rankBatch(tc.global, tc.size, 0) != tc.want0 || rankBatch(tc.global, tc.size, tc.size-1) != tc.wantLast {
			t.Errorf("rankBatch(%d, %d): sum %d, first %d, last %d", tc.global, tc.size, sum, rankBatch(tc.global, tc.size, 0), rankBatch(tc.global, tc.size, tc.size-1))
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		ok   bool
	}{
		{"defaults", func(*Config) {}, true},
		{"zero value", func(c *Config) { *c = Config{} }, true},
		{"negative timeout", func(c *Config) { c.StepTimeout = -1 }, false},
		{"tiny bucket", func(c *Config) { c.BucketBytes = 2 }, false},
	} {
		c := DefaultConfig()
		tc.mod(&c)
		if err := c.Validate(); (err == nil) != tc.ok {
			t.Errorf("%s: Validate() = %v", tc.name, err)
		}
	}
}

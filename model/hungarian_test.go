package model

import (
	"encoding/json"
	"math"
	"math/rand"
	"testing"
)

func assignCost(cost []float64, cols int, row, col []int) float64 {
	s := 0.0
	for i := range row {
		s += cost[row[i]*cols+col[i]]
	}
	return s
}

// bruteForce tries every injection of the smaller side into the larger.
func bruteForce(cost []float64, rows, cols int) float64 {
	best := math.Inf(1)
	if rows == 0 || cols == 0 {
		return 0
	}
	usedC := make([]bool, cols)
	usedR := make([]bool, rows)
	var rec func(k int, acc float64)
	if rows <= cols {
		rec = func(r int, acc float64) {
			if r == rows {
				best = math.Min(best, acc)
				return
			}
			for c := 0; c < cols; c++ {
				if !usedC[c] {
					usedC[c] = true
					rec(r+1, acc+cost[r*cols+c])
					usedC[c] = false
				}
			}
		}
	} else {
		rec = func(c int, acc float64) {
			if c == cols {
				best = math.Min(best, acc)
				return
			}
			for r := 0; r < rows; r++ {
				if !usedR[r] {
					usedR[r] = true
					rec(c+1, acc+cost[r*cols+c])
					usedR[r] = false
				}
			}
		}
	}
	rec(0, 0)
	return best
}

func checkValid(t *testing.T, rows, cols int, row, col []int) {
	t.Helper()
	want := min(rows, cols)
	if len(row) != want || len(col) != want {
		t.Fatalf("%dx%d: %d pairs, want %d", rows, cols, len(row), want)
	}
	seenR, seenC := map[int]bool{}, map[int]bool{}
	for i := range row {
		if row[i] < 0 || row[i] >= rows || col[i] < 0 || col[i] >= cols || seenR[row[i]] || seenC[col[i]] {
			t.Fatalf("%dx%d: invalid pairs %v %v", rows, cols, row, col)
		}
		if i > 0 && row[i] <= row[i-1] {
			t.Fatalf("rows not sorted: %v", row)
		}
		seenR[row[i]], seenC[col[i]] = true, true
	}
}

func TestAssignBruteForce(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for trial := 0; trial < 300; trial++ {
		rows, cols := rng.Intn(7), rng.Intn(7)
		cost := make([]float64, rows*cols)
		for i := range cost {
			if trial%3 == 0 {
				cost[i] = float64(rng.Intn(4)) // many ties
			} else {
				cost[i] = rng.NormFloat64() * 10
			}
		}
		row, col := Assign(cost, rows, cols)
		checkValid(t, rows, cols, row, col)
		got, want := assignCost(cost, cols, row, col), bruteForce(cost, rows, cols)
		if math.Abs(got-want) > 1e-9 {
			t.Fatalf("trial %d %dx%d: cost %v, brute force %v", trial, rows, cols, got, want)
		}
	}
}

func TestAssignTable(t *testing.T) {
	tests := []struct {
		name       string
		rows, cols int
		cost       []float64
		row, col   []int
	}{
		{"empty rows", 0, 3, nil, []int{}, []int{}},
		{"empty cols", 3, 0, nil, []int{}, []int{}},
		{"1x1", 1, 1, []float64{7}, []int{0}, []int{0}},
		{"anti-diagonal", 2, 2, []float64{5, 1, 1, 5}, []int{0, 1}, []int{1, 0}},
		{"wide", 1, 3, []float64{3, 2, 9}, []int{0}, []int{1}},
		{"tall", 3, 1, []float64{3, -2, 9}, []int{1}, []int{0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			row, col := Assign(tc.cost, tc.rows, tc.cols)
			if len(row) != len(tc.row) {
				t.Fatalf("got %v %v, want %v %v", row, col, tc.row, tc.col)
			}
			for i := range row {
				if row[i] != tc.row[i] || col[i] != tc.col[i] {
					t.Fatalf("got %v %v, want %v %v", row, col, tc.row, tc.col)
				}
			}
		})
	}
}

// TestAssignScipy compares total costs with scipy's linear_sum_assignment
// on 200 random matrices of varied shapes, empty ones included.
func TestAssignScipy(t *testing.T) {
	type problem struct {
		Rows int       `json:"rows"`
		Cols int       `json:"cols"`
		Cost []float64 `json:"cost"`
	}
	rng := rand.New(rand.NewSource(2))
	probs := make([]problem, 200)
	for i := range probs {
		r, c := rng.Intn(40), rng.Intn(40)
		switch i % 10 {
		case 0:
			r = 0
		case 1:
			c = 0
		case 2:
			r, c = 100, rng.Intn(12) // DETR's shape: many queries, few targets
		}
		cost := make([]float64, r*c)
		for k := range cost {
			cost[k] = rng.Float64()*10 - 3
			if i%4 == 3 {
				cost[k] = math.Round(cost[k]) // ties
			}
		}
		probs[i] = problem{r, c, cost}
	}
	in, _ := json.Marshal(probs)
	script := `
import json, sys
import numpy as np
from scipy.optimize import linear_sum_assignment
out = []
for p in json.load(sys.stdin):
    c = np.array(p["cost"], dtype=np.float64).reshape(p["rows"], p["cols"])
    r, k = linear_sum_assignment(c)
    out.append(float(c[r, k].sum()) if len(r) else 0.0)
json.dump(out, sys.stdout)
`
	var want []float64
	if err := json.Unmarshal(runPython(t, in, "-c", script), &want); err != nil {
		t.Fatal(err)
	}
	for i, p := range probs {
		row, col := Assign(p.Cost, p.Rows, p.Cols)
		checkValid(t, p.Rows, p.Cols, row, col)
		got := assignCost(p.Cost, p.Cols, row, col)
		if math.Abs(got-want[i]) > 1e-9*math.Max(1, math.Abs(want[i])) {
			t.Fatalf("problem %d (%dx%d): cost %v, scipy %v", i, p.Rows, p.Cols, got, want[i])
		}
	}
}

func BenchmarkAssign100x10(b *testing.B) {
	rng := rand.New(rand.NewSource(3))
	cost := make([]float64, 100*10)
	for i := range cost {
		cost[i] = rng.Float64()
	}
	for b.Loop() {
		Assign(cost, 100, 10)
	}
}

func TestAssignNaNStops(t *testing.T) {
	nan := math.NaN()
	row, col := Assign([]float64{nan, nan, nan, nan}, 2, 2) // must return, not spin
	if row != nil || col != nil {
		t.Fatalf("NaN costs gave %v %v, want nil", row, col)
	}
}

package model

import "math"

// Assign solves the linear assignment problem for a rows×cols cost matrix
// (row-major, len rows·cols): it returns min(rows, cols) pairs (row[i],
// col[i]) of distinct rows and columns with the least total cost, sorted by
// row, like scipy.optimize.linear_sum_assignment. It is exact and runs in
// O(n²·m) for n = min(rows, cols), m = max(rows, cols): the shortest
// augmenting path method with potentials (Jonker-Volgenant / Kuhn-Munkres).
// Costs must be finite; with a NaN cost it returns nil, nil.
func Assign(cost []float64, rows, cols int) (row, col []int) {
	if rows == 0 || cols == 0 {
		return []int{}, []int{}
	}
	// The solver wants n ≤ m; solve the transpose when there are more rows.
	at := func(i, j int) float64 { return cost[i*cols+j] }
	n, m := rows, cols
	transposed := rows > cols
	if transposed {
		n, m = cols, rows
		at = func(i, j int) float64 { return cost[j*cols+i] }
	}
	// 1-based arrays; index 0 is the virtual start column.
	u := make([]float64, n+1) // row potentials
	v := make([]float64, m+1) // column potentials
	p := make([]int, m+1)     // p[j]: row matched to column j (0: none)
	way := make([]int, m+1)   // previous column on the shortest path
	minv := make([]float64, m+1)
	used := make([]bool, m+1)
	for i := 1; i <= n; i++ {
		p[0] = i
		j0 := 0
		for j := range minv {
			minv[j] = math.Inf(1)
			used[j] = false
		}
		for p[j0] != 0 {
			used[j0] = true
			i0, delta, j1 := p[j0], math.Inf(1), 0
			for j := 1; j <= m; j++ {
				if used[j] {
					continue
				}
				cur := at(i0-1, j-1) - u[i0] - v[j]
				if cur < minv[j] {
					minv[j], way[j] = cur, j0
				}
				if minv[j] < delta {
					delta, j1 = minv[j], j
				}
			}
			for j := 0; j <= m; j++ {
				if used[j] {
					u[p[j]] += delta
					v[j] -= delta
				} else {
					minv[j] -= delta
				}
			}
			if j1 == 0 { // only with NaN costs: stop rather than spin
				return nil, nil
			}
			j0 = j1
		}
		// Flip the augmenting path.
		for j0 != 0 {
			j1 := way[j0]
			p[j0] = p[j1]
			j0 = j1
		}
	}
	// match[r] = column of solver row r.
	match := make([]int, n)
	for j := 1; j <= m; j++ {
		if p[j] != 0 {
			match[p[j]-1] = j - 1
		}
	}
	row, col = make([]int, 0, n), make([]int, 0, n)
	if !transposed {
		for r := 0; r < n; r++ {
			row, col = append(row, r), append(col, match[r])
		}
		return row, col
	}
	// Solver rows are the original columns; sort the pairs by original row.
	byRow := make([]int, rows)
	for i := range byRow {
		byRow[i] = -1
	}
	for c, r := range match {
		byRow[r] = c
	}
	for r, c := range byRow {
		if c >= 0 {
			row, col = append(row, r), append(col, c)
		}
	}
	return row, col
}

package torch

import (
	"strings"
	"testing"
)

func TestShapeOps(t *testing.T) {
	s := scope(t)
	x := f32(s, []float32{0, 1, 2, 3, 4, 5}, 2, 3) // [[0 1 2] [3 4 5]]
	shapeIs(t, x.Reshape(3, -1), 3, 2)
	shapeIs(t, x.View(6), 6)
	tr := x.Transpose(0, 1)
	shapeIs(t, tr, 3, 2)
	near(t, "transpose", vals(t, tr.Contiguous()), []float64{0, 3, 1, 4, 2, 5}, 0)
	if tr.IsContiguous() || !tr.Contiguous().IsContiguous() {
		t.Fatal("contiguous flags wrong")
	}
	near(t, "permute", vals(t, x.Permute(1, 0)), []float64{0, 3, 1, 4, 2, 5}, 0)
	near(t, "narrow", vals(t, x.Narrow(1, 1, 2)), []float64{1, 2, 4, 5}, 0)
	near(t, "slice step", vals(t, x.Slice(1, 0, 3, 2)), []float64{0, 2, 3, 5}, 0)
	near(t, "select", vals(t, x.Select(0, 1)), []float64{3, 4, 5}, 0)
	idx := i64t(s, []int64{2, 0}, 2)
	near(t, "index_select", vals(t, x.IndexSelect(1, idx)), []float64{2, 0, 5, 3}, 0)
	gidx := i64t(s, []int64{0, 0, 2, 1}, 2, 2)
	near(t, "gather", vals(t, x.Gather(1, gidx)), []float64{0, 0, 5, 4}, 0)
	sa := Zeros(s, []int64{3}, Float32, dev).ScatterAdd(0, i64t(s, []int64{0, 2, 0}, 3), f32(s, []float32{1, 2, 3}, 3))
	near(t, "scatter_add", vals(t, sa), []float64{4, 0, 2}, 0)
	c := Cat([]*Tensor{x, x}, 0)
	shapeIs(t, c, 4, 3)
	near(t, "cat", vals(t, c.Select(0, 2)), []float64{0, 1, 2}, 0)
	st := Stack([]*Tensor{x, x}, 1)
	shapeIs(t, st, 2, 2, 3)
	shapeIs(t, x.Unsqueeze(0).Expand(4, -1, -1), 4, 2, 3)
	shapeIs(t, x.Unsqueeze(1), 2, 1, 3)
	shapeIs(t, x.Unsqueeze(1).SqueezeDim(1), 2, 3)
	shapeIs(t, x.Reshape(1, 2, 1, 3).Squeeze(), 2, 3)
	shapeIs(t, x.Reshape(1, 2, 3).Flatten(0, -1), 6)
	r := x.Repeat(2, 2)
	shapeIs(t, r, 4, 6)
	near(t, "repeat", vals(t, r.Select(0, 3)), []float64{3, 4, 5, 3, 4, 5}, 0)
	parts := x.Split([]int64{1, 2}, 1)
	shapeIs(t, parts[0], 2, 1)
	near(t, "split", vals(t, parts[1]), []float64{1, 2, 4, 5}, 0)
	ch := f32(s, []float32{0, 1, 2, 3, 4}, 5).Chunk(2, 0)
	if len(ch) != 2 {
		t.Fatalf("chunk: %d pieces", len(ch))
	}
	near(t, "chunk", vals(t, ch[1]), []float64{3, 4}, 0)
	mask := FromBool(s, []bool{false, true}, []int64{2}, dev)
	near(t, "masked_select rows", vals(t, x.MaskedSelect(mask)), []float64{3, 4, 5}, 0)
	nz := FromBool(s, []bool{false, true, true, false}, []int64{2, 2}, dev).Nonzero()
	if got := ints(t, nz); fmtShape(got) != "[0 1 1 0]" {
		t.Fatalf("nonzero: %v", got)
	}
	tri := Ones(s, []int64{3, 3}, Float32, dev)
	near(t, "tril", vals(t, tri.Tril(0)), []float64{1, 0, 0, 1, 1, 0, 1, 1, 1}, 0)
	near(t, "triu", vals(t, tri.Triu(1)), []float64{0, 1, 1, 0, 0, 1, 0, 0, 0}, 0)
	if got := ints(t, i64t(s, []int64{2, 0}, 2).OneHot(3)); fmtShape(got) != "[0 0 1 1 0 0]" {
		t.Fatalf("one_hot: %v", got)
	}
	near(t, "cumsum", vals(t, f32(s, []float32{1, 2, 3}, 3).Cumsum(0)), []float64{1, 3, 6}, 0)
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestShapeErrors(t *testing.T) {
	s := scope(t)
	x := f32(s, []float32{0, 1, 2, 3, 4, 5}, 2, 3)
	for _, c := range []struct {
		name string
		got  *Tensor
		want string
	}{
		{"reshape", x.Reshape(4, 2), "torch: reshape: shape [2 3]: shape '[4, 2]' is invalid"},
		{"view", x.Transpose(0, 1).View(6), "torch: view: shape [3 2]:"},
		{"cat", Cat([]*Tensor{x, f32(s, []float32{1, 2}, 2)}, 0), "torch: cat: shapes [2 3] and [2]:"},
		{"index_select dtype", x.IndexSelect(0, f32(s, []float32{0}, 1)), "torch: index_select: shapes [2 3] and [1]:"},
		{"narrow", x.Narrow(1, 2, 5), "torch: narrow: shape [2 3]:"},
		{"permute", x.Permute(0), "torch: permute: shape [2 3]:"},
	} {
		if c.got.Err() == nil || !strings.HasPrefix(c.got.Err().Error(), c.want) {
			t.Errorf("%s: error %v, want prefix %q", c.name, c.got.Err(), c.want)
		}
	}
}

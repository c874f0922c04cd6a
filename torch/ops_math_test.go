package torch

import (
	"math"
	"strings"
	"testing"
)

func TestElementwise(t *testing.T) {
	s := scope(t)
	a := f32(s, []float32{1, 4, 9}, 3)
	b := f32(s, []float32{2, 2, 3}, 3)
	cases := []struct {
		name string
		got  *Tensor
		want []float64
	}{
		{"add", a.Add(b), []float64{3, 6, 12}},
		{"Add", Add(a, b), []float64{3, 6, 12}},
		{"sub", Sub(a, b), []float64{-1, 2, 6}},
		{"mul", Mul(a, b), []float64{2, 8, 27}},
		{"div", Div(a, b), []float64{0.5, 2, 3}},
		{"pow", a.Pow(b), []float64{1, 16, 729}},
		{"minimum", Minimum(a, b), []float64{1, 2, 3}},
		{"maximum", Maximum(a, b), []float64{2, 4, 9}},
		{"add scalar", a.AddScalar(1), []float64{2, 5, 10}},
		{"sub scalar", a.SubScalar(1), []float64{0, 3, 8}},
		{"rsub scalar", a.RSubScalar(1), []float64{0, -3, -8}},
		{"mul scalar", a.MulScalar(0.5), []float64{0.5, 2, 4.5}},
		{"div scalar", a.DivScalar(2), []float64{0.5, 2, 4.5}},
		{"pow scalar", a.PowScalar(0.5), []float64{1, 2, 3}},
		{"neg", a.Neg(), []float64{-1, -4, -9}},
		{"sqrt", a.Sqrt(), []float64{1, 2, 3}},
		{"rsqrt", a.Rsqrt(), []float64{1, 0.5, 1.0 / 3}},
		{"exp", f32(s, []float32{0, 1}, 2).Exp(), []float64{1, math.E}},
		{"log", f32(s, []float32{1, math.E}, 2).Log(), []float64{0, 1}},
		{"abs", f32(s, []float32{-2, 3}, 2).Abs(), []float64{2, 3}},
		{"clamp", f32(s, []float32{-2, 0.5, 3}, 3).Clamp(0, 1), []float64{0, 0.5, 1}},
		{"clamp_min", f32(s, []float32{-2, 3}, 2).ClampMin(0), []float64{0, 3}},
		{"clamp_max", f32(s, []float32{-2, 3}, 2).ClampMax(0), []float64{-2, 0}},
		{"relu", f32(s, []float32{-1, 2}, 2).Relu(), []float64{0, 2}},
		{"sigmoid", f32(s, []float32{0, 2}, 2).Sigmoid(), []float64{0.5, 1 / (1 + math.Exp(-2))}},
		{"tanh", f32(s, []float32{0, 1}, 2).Tanh(), []float64{0, math.Tanh(1)}},
		{"gelu", f32(s, []float32{1}, 1).Gelu(), []float64{0.5 * (1 + math.Erf(1/math.Sqrt2))}},
		{"gelu tanh", f32(s, []float32{1}, 1).GeluTanh(), []float64{0.5 * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(1+0.044715)))}},
		{"silu", f32(s, []float32{1}, 1).Silu(), []float64{1 / (1 + math.Exp(-1))}},
		{"reciprocal", a.Reciprocal(), []float64{1, 0.25, 1.0 / 9}},
		{"square", b.Square(), []float64{4, 4, 9}},
		{"floor", f32(s, []float32{1.5, -1.5}, 2).Floor(), []float64{1, -2}},
		{"sin", f32(s, []float32{0}, 1).Sin(), []float64{0}},
		{"cos", f32(s, []float32{0}, 1).Cos(), []float64{1}},
		{"matmul", f32(s, []float32{1, 2, 3, 4}, 2, 2).Matmul(f32(s, []float32{5, 6, 7, 8}, 2, 2)), []float64{19, 22, 43, 50}},
		{"bmm", Bmm(f32(s, []float32{1, 2, 3, 4}, 2, 1, 2), f32(s, []float32{1, 1, 2, 2}, 2, 2, 1)), []float64{3, 14}},
		{"linear", Linear(f32(s, []float32{1, 2}, 1, 2), f32(s, []float32{1, 0, 1, 1, 0, 1}, 3, 2), f32(s, []float32{0.5, 0, -1}, 3)), []float64{1.5, 3, 1}},
		{"linear no bias", Linear(f32(s, []float32{1, 2}, 1, 2), f32(s, []float32{1, 1}, 1, 2), nil), []float64{3}},
		{"where", Where(FromBool(s, []bool{true, false, true}, []int64{3}, dev), a, b), []float64{1, 2, 9}},
		{"masked_fill", a.MaskedFill(FromBool(s, []bool{false, true, false}, []int64{3}, dev), -1), []float64{1, -1, 9}},
	}
	for _, c := range cases {
		near(t, c.name, vals(t, c.got), c.want, 1e-6)
	}
	// comparisons
	cmp := []struct {
		name string
		got  *Tensor
		want string
	}{
		{"eq", a.Eq(b), "[false false false]"},
		{"ne", a.Ne(b), "[true true true]"},
		{"lt", a.Lt(b), "[true false false]"},
		{"le", f32(s, []float32{2}, 1).Le(b.Narrow(0, 0, 1)), "[true]"},
		{"gt", a.Gt(b), "[false true true]"},
		{"ge", a.Ge(f32(s, []float32{1, 5, 9}, 3)), "[true false true]"},
		{"eq scalar", a.EqScalar(4), "[false true false]"},
		{"gt scalar", a.GtScalar(3), "[false true true]"},
		{"logical_not", FromBool(s, []bool{true, false}, []int64{2}, dev).LogicalNot(), "[false true]"},
		{"logical_and", FromBool(s, []bool{true, true}, []int64{2}, dev).LogicalAnd(FromBool(s, []bool{true, false}, []int64{2}, dev)), "[true false]"},
		{"logical_or", FromBool(s, []bool{false, false}, []int64{2}, dev).LogicalOr(FromBool(s, []bool{true, false}, []int64{2}, dev)), "[true false]"},
		{"isnan", f32(s, []float32{float32(math.NaN()), 1}, 2).IsNan(), "[true false]"},
	}
	for _, c := range cmp {
		if got := fmtBools(bools(t, c.got)); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
	// integer arithmetic stays integral
	n := i64t(s, []int64{3, 7}, 2)
	if got := ints(t, n.AddScalar(2)); got[0] != 5 || got[1] != 9 {
		t.Fatalf("int add: %v", got)
	}
	if got := ints(t, n.FloorDivideScalar(2)); got[0] != 1 || got[1] != 3 {
		t.Fatalf("int floor_divide: %v", got)
	}
	if got := ints(t, n.RemainderScalar(3)); got[0] != 0 || got[1] != 1 {
		t.Fatalf("int remainder: %v", got)
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
}

func fmtBools(b []bool) string {
	var sb strings.Builder
	sb.WriteString("[")
	for i, v := range b {
		if i > 0 {
			sb.WriteString(" ")
		}
		if v {
			sb.WriteString("true")
		} else {
			sb.WriteString("false")
		}
	}
	sb.WriteString("]")
	return sb.String()
}

func TestReductions(t *testing.T) {
	s := scope(t)
	x := f32(s, []float32{1, 5, 3, 4, 2, 6}, 2, 3) // [[1 5 3] [4 2 6]]
	cases := []struct {
		name string
		got  *Tensor
		want []float64
	}{
		{"sum all", x.SumAll(), []float64{21}},
		{"mean all", x.MeanAll(), []float64{3.5}},
		{"min all", x.MinAll(), []float64{1}},
		{"max all", x.MaxAll(), []float64{6}},
		{"sum 0", x.Sum(0, false), []float64{5, 7, 9}},
		{"sum 1 keep", x.Sum(1, true), []float64{9, 12}},
		{"sum dims", x.SumDims([]int64{0, 1}, false), []float64{21}},
		{"mean 1", x.Mean(1, false), []float64{3, 4}},
		{"mean dims", x.MeanDims([]int64{0}, false), []float64{2.5, 3.5, 4.5}},
		{"max 1", x.Max(1, false), []float64{5, 6}},
		{"min 0", x.Min(0, false), []float64{1, 2, 3}},
		{"amax", x.Amax([]int64{1}, false), []float64{5, 6}},
		{"amin", x.Amin([]int64{0}, false), []float64{1, 2, 3}},
		{"logsumexp", f32(s, []float32{0, 0}, 2).LogSumExp(0, false), []float64{math.Log(2)}},
		{"prod", x.Prod(1, false), []float64{15, 48}},
		{"norm", f32(s, []float32{3, 4}, 2).Norm([]int64{0}, false), []float64{5}},
		{"var", f32(s, []float32{1, 3}, 2).Var([]int64{0}, false), []float64{1}},
		{"std", f32(s, []float32{1, 3}, 2).Std([]int64{0}, false), []float64{1}},
	}
	for _, c := range cases {
		near(t, c.name, vals(t, c.got), c.want, 1e-6)
	}
	if got := ints(t, x.Argmax(1, false)); got[0] != 1 || got[1] != 2 {
		t.Fatalf("argmax: %v", got)
	}
	if got := ints(t, x.Argmin(0, false)); fmtShape(got) != "[0 1 0]" {
		t.Fatalf("argmin: %v", got)
	}
	if got := ints(t, x.ArgmaxAll()); got[0] != 5 {
		t.Fatalf("argmax all: %v", got)
	}
	v, i := x.MaxWithIndices(0, true)
	shapeIs(t, v, 1, 3)
	near(t, "max values", vals(t, v), []float64{4, 5, 6}, 0)
	if got := ints(t, i); fmtShape(got) != "[1 0 1]" {
		t.Fatalf("max indices: %v", got)
	}
	mv, mi := x.MinWithIndices(1, false)
	near(t, "min values", vals(t, mv), []float64{1, 2}, 0)
	if got := ints(t, mi); fmtShape(got) != "[0 1]" {
		t.Fatalf("min indices: %v", got)
	}
	tv, ti := x.Topk(2, 1, true, true)
	near(t, "topk values", vals(t, tv), []float64{5, 3, 6, 4}, 0)
	if got := ints(t, ti); fmtShape(got) != "[1 2 2 0]" {
		t.Fatalf("topk indices: %v", got)
	}
	sv, si := x.Sort(1, true)
	near(t, "sort desc", vals(t, sv), []float64{5, 3, 1, 6, 4, 2}, 0)
	if got := ints(t, si); fmtShape(got) != "[1 2 0 2 0 1]" {
		t.Fatalf("sort indices: %v", got)
	}
	bb := FromBool(s, []bool{true, false, true, true}, []int64{2, 2}, dev)
	if got := bools(t, bb.AnyDim(1, false)); !got[0] || !got[1] {
		t.Fatalf("any: %v", got)
	}
	if got := bools(t, bb.AllDim(1, false)); got[0] || !got[1] {
		t.Fatalf("all: %v", got)
	}
	if got := bools(t, bb.All()); got[0] {
		t.Fatalf("all (whole): %v", got)
	}
	if got := bools(t, bb.Any()); !got[0] {
		t.Fatalf("any (whole): %v", got)
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestMathErrors(t *testing.T) {
	s := scope(t)
	a := f32(s, []float32{1, 2, 3, 4, 5, 6}, 2, 3)
	b := f32(s, []float32{1, 2, 3, 4, 5, 6, 7, 8}, 4, 2)
	for _, c := range []struct {
		name string
		got  *Tensor
		want string
	}{
		{"matmul", a.Matmul(b), "torch: matmul: shapes [2 3] and [4 2]: mat1 and mat2 shapes cannot be multiplied"},
		{"add broadcast", a.Add(b), "torch: add: shapes [2 3] and [4 2]: The size of tensor a (3) must match"},
		{"bmm dims", a.Bmm(a), "torch: bmm: shapes [2 3] and [2 3]:"},
		{"linear", Linear(a, b, nil), "torch: linear: shapes [2 3] and [4 2]:"},
		{"where dtype", Where(a, a, a), "torch: where: shapes [2 3], [2 3] and [2 3]:"},
		{"masked_fill dtype", a.MaskedFill(a, 0), "torch: masked_fill: shapes [2 3] and [2 3]:"},
		{"max dim", a.Max(5, false), "torch: max: shape [2 3]: Dimension out of range"},
	} {
		if c.got.Err() == nil || !strings.HasPrefix(c.got.Err().Error(), c.want) {
			t.Errorf("%s: error %v, want prefix %q", c.name, c.got.Err(), c.want)
		}
	}
}

// ChannelsLast keeps the shape and the values and changes only the memory layout: not contiguous
// row-major, and Contiguous gives the same values back; a tensor that is not 4-D is refused.
func TestChannelsLast(t *testing.T) {
	s := scope(t)
	data := make([]float32, 2*3*4*5)
	for i := range data {
		data[i] = float32(i)
	}
	x := f32(s, data, 2, 3, 4, 5)
	want := vals(t, x)
	cl := x.ChannelsLast()
	shapeIs(t, cl, 2, 3, 4, 5)
	near(t, "channels_last", vals(t, cl), want, 0)
	if !x.IsContiguous() || cl.IsContiguous() {
		t.Fatalf("contiguous: the input %v, channels-last %v; want true, false", x.IsContiguous(), cl.IsContiguous())
	}
	back := cl.Contiguous()
	if !back.IsContiguous() {
		t.Fatal("Contiguous of a channels-last tensor is not contiguous")
	}
	near(t, "contiguous of channels_last", vals(t, back), want, 0)
	// The layout is carried through a convolution: the same result as from the row-major input.
	w := f32(s, data[:2*3*2*2], 2, 3, 2, 2)
	near(t, "conv2d channels_last", vals(t, Conv2d(cl, w, nil, Conv2dOptions{})), vals(t, Conv2d(x, w, nil, Conv2dOptions{})), 1e-6)
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	bad := f32(s, data[:24], 2, 3, 4).ChannelsLast()
	if err := bad.Err(); err == nil || !strings.HasPrefix(err.Error(), "torch: channels_last: shape [2 3 4]:") || !strings.Contains(err.Error(), "4-D") {
		t.Errorf("3-D input: error %v, want one naming channels_last, the shape and 4-D", err)
	}
}

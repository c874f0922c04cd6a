package allreduce

import (
	"math"
	"math/rand/v2"
	"testing"
)

// bf16Ref rounds through float64 arithmetic, independently of toBF16's bit
// trick: the nearest bfloat16 neighbour, ties to the even mantissa.
func bf16Ref(f float32) uint16 {
	b := math.Float32bits(f)
	if f != f {
		return uint16(b>>16) | 0x40
	}
	lo, hi := uint16(b>>16), uint16(b>>16)+1
	if b&0xffff == 0 {
		return lo
	}
	dl := math.Abs(float64(f) - float64(fromBF16(lo)))
	vh := float64(fromBF16(hi))
	if math.IsInf(vh, 0) { // the next step past the largest finite value
		vh = math.Copysign(math.Ldexp(1, 128), vh)
	}
	dh := math.Abs(float64(f) - vh)
	switch {
	case dl < dh:
		return lo
	case dh < dl:
		return hi
	case lo&1 == 0:
		return lo
	}
	return hi
}

func TestBF16Rounding(t *testing.T) {
	cases := []struct {
		in   uint32
		want uint16
	}{
		{0x3f800000, 0x3f80}, // 1.0 exact
		{0x3f808000, 0x3f80}, // tie, even stays
		{0x3f818000, 0x3f82}, // tie, odd rounds up
		{0x3f808001, 0x3f81}, // above half
		{0x7f7fffff, 0x7f80}, // max float rounds to +Inf
		{0x7f800000, 0x7f80}, // +Inf
		{0xff800000, 0xff80}, // -Inf
		{0x80000000, 0x8000}, // -0
		{0x00000001, 0x0000}, // smallest subnormal rounds to 0
	}
	for _, c := range cases {
		if got := toBF16(math.Float32frombits(c.in)); got != c.want {
			t.Errorf("toBF16(%#08x) = %#04x, want %#04x", c.in, got, c.want)
		}
	}
	if h := toBF16(float32(math.NaN())); fromBF16(h) == fromBF16(h) {
		t.Errorf("NaN rounded to non-NaN %#04x", h)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		f := math.Float32frombits(rng.Uint32())
		if f != f {
			continue
		}
		if got, want := toBF16(f), bf16Ref(f); got != want {
			t.Fatalf("toBF16(%#08x) = %#04x, want %#04x", math.Float32bits(f), got, want)
		}
	}
}

// The vector kernels agree with the scalar ones bit for bit, NaNs,
// infinities and subnormals included.
func TestKernelsMatchScalar(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	const n = 100003
	src, dst := make([]float32, n), make([]float32, n)
	special := []uint32{0x7f800000, 0xff800000, 0x7fc00001, 0xffbfffff, 0x7f800001, 0x00000001, 0x80400000, 0x3f808000, 0x3f818000, 0x7f7fffff}
	for i := range src {
		src[i] = math.Float32frombits(rng.Uint32())
		dst[i] = math.Float32frombits(rng.Uint32())
		if i%97 == 0 {
			src[i] = math.Float32frombits(special[i%len(special)])
		}
	}
	h, hGo := make([]uint16, n), make([]uint16, n)
	encodeBF16(h, src)
	encodeBF16Go(hGo, src)
	for i := range h {
		if h[i] != hGo[i] || h[i] != toBF16(src[i]) {
			t.Fatalf("encode %d: %#08x → %#04x, scalar %#04x", i, math.Float32bits(src[i]), h[i], hGo[i])
		}
	}
	f, fGo := make([]float32, n), make([]float32, n)
	decodeBF16(f, h)
	decodeBF16Go(fGo, h)
	a, aGo := append([]float32(nil), dst...), append([]float32(nil), dst...)
	addBF16(a, h)
	addBF16Go(aGo, h)
	b, bGo := append([]float32(nil), dst...), append([]float32(nil), dst...)
	addF32(b, src)
	addF32Go(bGo, src)
	sc, scGo := append([]float32(nil), dst...), append([]float32(nil), dst...)
	Scale(sc, src[5])
	scaleF32Go(scGo, src[5])
	acc, accGo := append([]uint16(nil), h...), append([]uint16(nil), h...)
	accumBF16(acc, dst)
	accumBF16Go(accGo, dst)
	for i := range acc {
		want := toBF16(fromBF16(h[i]) + dst[i])
		nan := func(x uint16) bool { return x&0x7fff > 0x7f80 }
		if (acc[i] != accGo[i] || acc[i] != want) && !(nan(acc[i]) && nan(want)) {
			t.Fatalf("accumBF16 %d: %#04x, scalar %#04x, want %#04x", i, acc[i], accGo[i], want)
		}
	}
	for i := range f {
		for _, p := range [][2]float32{{f[i], fGo[i]}, {a[i], aGo[i]}, {b[i], bGo[i]}, {sc[i], scGo[i]}} {
			if math.Float32bits(p[0]) != math.Float32bits(p[1]) && !(p[0] != p[0] && p[1] != p[1]) {
				t.Fatalf("element %d: vector %#08x, scalar %#08x", i, math.Float32bits(p[0]), math.Float32bits(p[1]))
			}
		}
	}
	t.Logf("AVX2: %v", useAVX2)
}

func TestKernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{0, 1, 7, 8, 9, 63, 1000} {
		a, b := make([]float32, n), make([]float32, n)
		for i := range a {
			a[i], b[i] = rng.Float32()*100-50, rng.Float32()*1e-3
		}
		got := append([]float32(nil), a...)
		addF32(got, b)
		for i := range a {
			if got[i] != a[i]+b[i] {
				t.Fatalf("addF32 n=%d i=%d: %v != %v", n, i, got[i], a[i]+b[i])
			}
		}
		got = append(got[:0], a...)
		Scale(got, 0.37)
		for i := range a {
			if got[i] != a[i]*0.37 {
				t.Fatalf("Scale n=%d i=%d: %v != %v", n, i, got[i], a[i]*0.37)
			}
		}
		h := make([]uint16, n)
		encodeBF16(h, b)
		back := make([]float32, n)
		decodeBF16(back, h)
		got = append(got[:0], a...)
		addBF16(got, h)
		for i := range a {
			if h[i] != toBF16(b[i]) || back[i] != fromBF16(h[i]) || got[i] != a[i]+back[i] {
				t.Fatalf("bf16 kernels n=%d i=%d", n, i)
			}
		}
	}
}

func BenchmarkAddF32(b *testing.B) {
	dst, src := make([]float32, 1<<20), make([]float32, 1<<20)
	b.SetBytes(4 << 20)
	for b.Loop() {
		addF32(dst, src)
	}
}

func BenchmarkScale(b *testing.B) {
	v := make([]float32, 1<<20)
	b.SetBytes(4 << 20)
	for b.Loop() {
		Scale(v, 1)
	}
}

func BenchmarkAddBF16(b *testing.B) {
	dst, src := make([]float32, 1<<20), make([]uint16, 1<<20)
	b.SetBytes(4 << 20)
	for b.Loop() {
		addBF16(dst, src)
	}
}

func BenchmarkEncodeBF16(b *testing.B) {
	dst, src := make([]uint16, 1<<20), make([]float32, 1<<20)
	b.SetBytes(4 << 20)
	for b.Loop() {
		encodeBF16(dst, src)
	}
}

package allreduce

// Tests for gmac (gmac.go): the tag must equal crypto/cipher's GCM Seal with
// no plaintext, on the assembly path and on the fallback path.

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"math/rand"
	"runtime"
	"testing"

	"golang.org/x/sys/cpu"
)

// gmacTestLengths are the data lengths every key is tried with: block edges,
// the ring's 64 KiB piece and its neighbours, and a multi-piece length.
var gmacTestLengths = []int{0, 1, 15, 16, 17, 63, 64, 65, 255, 256, 257,
	1000, 4095, 4096, 65535, 65536, 65537, 200000}

// withGMACPath runs f with useGMACAVX512 set to fast (only where the CPU
// supports it) and restores it afterwards.
func withGMACPath(t *testing.T, fast bool, f func(t *testing.T)) {
	t.Helper()
	if fast && !gmacAVX512Supported() {
		t.Skip("CPU lacks AVX-512/VPCLMULQDQ/GFNI: no fast path to test")
	}
	saved := useGMACAVX512
	useGMACAVX512 = fast
	defer func() { useGMACAVX512 = saved }()
	f(t)
}

func TestGMACMatchesStdlib(t *testing.T) {
	for _, path := range []struct {
		name string
		fast bool
	}{{"fast", true}, {"fallback", false}} {
		t.Run(path.name, func(t *testing.T) {
			withGMACPath(t, path.fast, func(t *testing.T) {
				rng := rand.New(rand.NewSource(1))
				lengths := append([]int(nil), gmacTestLengths...)
				for i := 0; i < 200; i++ {
					lengths = append(lengths, rng.Intn(300<<10+1))
				}
				data := make([]byte, 300<<10)
				for _, keyLen := range []int{16, 24, 32} {
					key := make([]byte, keyLen)
					rng.Read(key)
					block, err := aes.NewCipher(key)
					if err != nil {
						t.Fatal(err)
					}
					std, err := cipher.NewGCM(block)
					if err != nil {
						t.Fatal(err)
					}
					g, err := newGMAC(block)
					if err != nil {
						t.Fatal(err)
					}
					for _, n := range lengths {
						nonce := make([]byte, 12)
						rng.Read(nonce)
						d := data[:n]
						rng.Read(d)
						want := std.Seal(nil, nonce, nil, d)
						if got := g.tag(nil, nonce, d); !bytes.Equal(got, want) {
							t.Fatalf("key %d bytes, len %d, dst nil: tag %x, want %x", keyLen, n, got, want)
						}
						prefix := []byte("frame header")
						want = std.Seal(append([]byte(nil), prefix...), nonce, nil, d)
						if got := g.tag(append([]byte(nil), prefix...), nonce, d); !bytes.Equal(got, want) {
							t.Fatalf("key %d bytes, len %d, with prefix: tag %x, want %x", keyLen, n, got, want)
						}
						// A prefix in a slice with room to spare, as the transport does.
						buf := make([]byte, 3, 64)
						copy(buf, "abc")
						if got := g.tag(buf, nonce, d); !bytes.Equal(got, append([]byte("abc"), want[len(prefix):]...)) {
							t.Fatalf("key %d bytes, len %d, spare capacity: tag %x", keyLen, n, got)
						}
					}
				}
			})
		})
	}
}

// TestGMACUnalignedData feeds data that starts at every offset within a
// block, so the assembly's unaligned loads are covered.
func TestGMACUnalignedData(t *testing.T) {
	withGMACPath(t, true, func(t *testing.T) {
		rng := rand.New(rand.NewSource(2))
		key := make([]byte, 16)
		rng.Read(key)
		block, _ := aes.NewCipher(key)
		std, _ := cipher.NewGCM(block)
		g, _ := newGMAC(block)
		buf := make([]byte, 5000)
		rng.Read(buf)
		nonce := make([]byte, 12)
		for off := 0; off < 64; off++ {
			for _, n := range []int{0, 31, 256, 4096 + 80} {
				d := buf[off : off+n]
				if got, want := g.tag(nil, nonce, d), std.Seal(nil, nonce, nil, d); !bytes.Equal(got, want) {
					t.Fatalf("offset %d len %d: tag %x, want %x", off, n, got, want)
				}
			}
		}
	})
}

// TestGMACFastPathTaken makes sure the fast path cannot be silently skipped
// on a CPU that has the features: the flag must follow the detected features,
// the assembly must agree with a bit-serial GHASH, and with the fast path on
// tag must work without the standard library's AEAD at all.
func TestGMACFastPathTaken(t *testing.T) {
	want := runtime.GOARCH == "amd64" && cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW &&
		cpu.X86.HasAVX512VL && cpu.X86.HasAVX512VPCLMULQDQ && cpu.X86.HasAVX512GFNI &&
		cpu.X86.HasPCLMULQDQ
	if useGMACAVX512 != want {
		t.Fatalf("useGMACAVX512 = %v, but the CPU features say %v", useGMACAVX512, want)
	}
	if !want {
		t.Logf("GMAC path: standard library fallback (GOARCH %s, AVX-512F %v, VPCLMULQDQ %v, GFNI %v)",
			runtime.GOARCH, cpu.X86.HasAVX512F, cpu.X86.HasAVX512VPCLMULQDQ, cpu.X86.HasAVX512GFNI)
		return
	}
	t.Logf("GMAC path: AVX-512 VPCLMULQDQ+GFNI assembly")

	rng := rand.New(rand.NewSource(3))
	key := make([]byte, 32)
	rng.Read(key)
	block, _ := aes.NewCipher(key)
	g, err := newGMAC(block)
	if err != nil {
		t.Fatal(err)
	}
	var hb [16]byte
	block.Encrypt(hb[:], hb[:])
	h := gfElem{binary.BigEndian.Uint64(hb[:8]), binary.BigEndian.Uint64(hb[8:])}

	// ghashBlocks against the reference, for block counts around 4 and 16.
	data := make([]byte, 16*70)
	rng.Read(data)
	for nb := 1; nb <= 70; nb++ {
		var y [16]byte
		rng.Read(y[:])
		ref := gfElem{binary.BigEndian.Uint64(y[:8]), binary.BigEndian.Uint64(y[8:])}
		for i := 0; i < nb; i++ {
			ref.hi ^= binary.BigEndian.Uint64(data[16*i:])
			ref.lo ^= binary.BigEndian.Uint64(data[16*i+8:])
			ref = ref.mul(h)
		}
		ghashBlocks(&y, &g.htab, &data[0], nb)
		var want [16]byte
		binary.BigEndian.PutUint64(want[:8], ref.hi)
		binary.BigEndian.PutUint64(want[8:], ref.lo)
		if y != want {
			t.Fatalf("ghashBlocks(%d blocks) = %x, want %x", nb, y, want)
		}
	}

	// With no AEAD to fall back on, tag must still produce the right tag.
	std, _ := cipher.NewGCM(block)
	noFallback := &gmac{block: g.block, htab: g.htab}
	nonce := make([]byte, 12)
	rng.Read(nonce)
	piece := make([]byte, 65536)
	rng.Read(piece)
	if got, want := noFallback.tag(nil, nonce, piece), std.Seal(nil, nonce, nil, piece); !bytes.Equal(got, want) {
		t.Fatalf("fast path tag %x, want %x", got, want)
	}

	dst := make([]byte, 0, 16)
	if allocs := testing.AllocsPerRun(20, func() { g.tag(dst, nonce, piece) }); allocs != 0 {
		t.Fatalf("fast path allocates %v times per tag", allocs)
	}
}

// TestGMACFieldMul checks the reference multiplication used to build the
// table against the algebra: 1·h = h, x·x^127 = x^128 = x^7+x^2+x+1, and
// multiplication commutes.
func TestGMACFieldMul(t *testing.T) {
	one := gfElem{hi: 1 << 63} // the coefficient of x^i is bit 127-i
	x := gfElem{hi: 1 << 62}
	x127 := gfElem{lo: 1}
	h := gfElem{0x0123456789abcdef, 0xfedcba9876543210}
	if got := h.mul(one); got != h {
		t.Fatalf("h * 1 = %+v", got)
	}
	if got, want := x.mul(x127), (gfElem{hi: 0xE1 << 56}); got != want {
		t.Fatalf("x * x^127 = %+v, want %+v", got, want)
	}
	k := gfElem{0x0f1e2d3c4b5a6978, 0x8796a5b4c3d2e1f0}
	if h.mul(k) != k.mul(h) {
		t.Fatal("multiplication does not commute")
	}
	if n := x.natural(); n != [2]uint64{2, 0} {
		t.Fatalf("natural(x) = %x", n)
	}
}

func BenchmarkGMAC(b *testing.B) {
	key := make([]byte, 16)
	block, _ := aes.NewCipher(key)
	nonce := make([]byte, 12)
	data := make([]byte, 64<<10)
	rand.New(rand.NewSource(4)).Read(data)
	dst := make([]byte, 0, 16)

	b.Run("fast", func(b *testing.B) {
		if !gmacAVX512Supported() {
			b.Skip("CPU lacks AVX-512/VPCLMULQDQ/GFNI")
		}
		g, _ := newGMAC(block)
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			g.tag(dst, nonce, data)
		}
	})
	b.Run("stdlib", func(b *testing.B) {
		std, _ := cipher.NewGCM(block)
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			std.Seal(dst, nonce, nil, data)
		}
	})
}

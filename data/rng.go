package data

import "math/bits"

// Every random choice of the pipeline comes from its own stream, seeded by
// (seed, epoch, pair id, purpose) through splitmix64. No stream is shared
// between rows or goroutines, so a batch is the same bits whatever the number
// of decode goroutines or the order in which they finish.

// Stream purposes: one independent stream per kind of choice and pair.
const (
	purposeMLM uint64 = iota + 1
	purposeITM
)

// splitmix64 finalizer (Steele, Lea, Flood 2014): a bijective mix of 64 bits.
func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// stream is a splitmix64 generator.
type stream struct{ s uint64 }

// newStream derives the stream of one (seed, epoch, pair, purpose).
func newStream(seed, epoch, pair, purpose uint64) *stream {
	h := mix64(seed + 0x9e3779b97f4a7c15)
	h = mix64(h ^ epoch)
	h = mix64(h ^ pair)
	h = mix64(h ^ purpose)
	return &stream{s: h}
}

// Uint64 returns the next 64 random bits.
func (r *stream) Uint64() uint64 {
	r.s += 0x9e3779b97f4a7c15
	return mix64(r.s)
}

// Float64 returns a uniform number in [0, 1).
func (r *stream) Float64() float64 { return float64(r.Uint64()>>11) / (1 << 53) }

// Intn returns a uniform integer in [0, n); n must be > 0.
func (r *stream) Intn(n int) int {
	// Lemire's multiply-shift; the bias is below 2^-32 for the n used here.
	hi, _ := bits.Mul64(r.Uint64(), uint64(n))
	return int(hi)
}

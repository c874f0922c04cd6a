package allreduce

import (
	"bytes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"
)

const pz = framePieceSize

// testFrameKey is a fixed connection key for the frame-format tests.
var testFrameKey = bytes.Repeat([]byte{0x5a}, 32)

// testFrames returns frames of the given sizes with distinct, patterned
// bytes.
func testFrames(sizes ...int) [][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	frames := make([][]byte, len(sizes))
	for i, n := range sizes {
		frames[i] = make([]byte, n)
		for j := range frames[i] {
			frames[i][j] = byte(rng.Uint32())
		}
	}
	return frames
}

// cutParts splits a frame into parts at a few places (an empty part among
// them), as the ring's sender passes header, metadata, padding and payload.
func cutParts(b []byte) [][]byte {
	cuts := []int{0, min(headerSize, len(b)), min(headerSize+5, len(b)), min(headerSize+5, len(b)), len(b)}
	var parts [][]byte
	for i := 1; i < len(cuts); i++ {
		parts = append(parts, b[cuts[i-1]:cuts[i]])
	}
	return parts
}

// sealStream writes frames as a protected connection would carry them.
func sealStream(t *testing.T, mode RingSecurity, frames [][]byte) []byte {
	t.Helper()
	c, err := newFrameCipher(mode, testFrameKey)
	if err != nil {
		t.Fatal(err)
	}
	var w bytes.Buffer
	for _, f := range frames {
		if err := c.write(&w, cutParts(f)); err != nil {
			t.Fatal(err)
		}
	}
	return w.Bytes()
}

// openStream reads frames from a protected stream until an error, as the
// read loop does, and returns the frames it delivered and the error.
func openStream(t *testing.T, mode RingSecurity, wire []byte) ([][]byte, error) {
	t.Helper()
	c, err := newFrameCipher(mode, testFrameKey)
	if err != nil {
		t.Fatal(err)
	}
	r := bytes.NewReader(wire)
	var got [][]byte
	for {
		var lb [4]byte
		if _, err := io.ReadFull(r, lb[:]); err != nil {
			return got, err
		}
		n := int(binary.LittleEndian.Uint32(lb[:]))
		b := make([]byte, n)
		if err := c.read(r, b); err != nil {
			return got, err
		}
		got = append(got, b)
	}
}

// Frames of every size around the piece boundaries, split into parts that
// cross them, come back whole; the wire carries each frame's length, its
// bytes and one tag per piece, and with RingEncrypt none of the frame's
// bytes.
func TestFrameCipherRoundTrip(t *testing.T) {
	sizes := []int{headerSize, 100, pz - 1, pz, pz + 1, 2*pz - headerSize, 3*pz + 17, 16 * pz}
	for _, mode := range []RingSecurity{RingAuth, RingEncrypt} {
		t.Run(mode.String(), func(t *testing.T) {
			frames := testFrames(sizes...)
			wire := sealStream(t, mode, frames)
			want := 0
			for _, n := range sizes {
				want += 4 + n + framePieces(n)*frameTagSize
			}
			if len(wire) != want {
				t.Fatalf("%d bytes on the wire, want %d", len(wire), want)
			}
			got, err := openStream(t, mode, wire)
			if err != io.EOF {
				t.Fatalf("reading the stream ended with %v, want EOF", err)
			}
			if len(got) != len(frames) {
				t.Fatalf("%d frames read, want %d", len(got), len(frames))
			}
			for i := range frames {
				if !bytes.Equal(got[i], frames[i]) {
					t.Fatalf("frame %d (%d bytes) differs", i, sizes[i])
				}
			}
			plainVisible := bytes.Contains(wire, frames[len(frames)-1][pz+100:pz+164])
			if plainVisible != (mode == RingAuth) {
				t.Fatalf("frame bytes visible on the wire: %v with %v", plainVisible, mode)
			}
		})
	}
}

// Every alteration of the stream a relay could make — a byte of any piece or
// tag, pieces swapped (with or without their tags), replayed or moved between
// frames, frames replayed, dropped or swapped, a length rewritten to cut or
// lengthen a frame, a tag cut off — fails a tag before the altered frame is
// delivered; the frames before it arrive intact.
func TestFrameCipherDetectsTampering(t *testing.T) {
	sizes := []int{3*pz + 17, pz, 2 * pz}
	// Offsets in the stream: frame f starts at start[f] (its length), the
	// bytes of its piece i at piece(f, i), the piece's tag at tag(f, i).
	start := []int{0}
	for _, n := range sizes {
		start = append(start, start[len(start)-1]+4+protectedLen(n))
	}
	piece := func(f, i int) int { return start[f] + 4 + i*pz }
	tag := func(f, i int) int { return start[f] + 4 + sizes[f] + i*frameTagSize }
	splice := func(w []byte, lo, hi int, with []byte) []byte {
		return append(append(append([]byte(nil), w[:lo]...), with...), w[hi:]...)
	}
	clone := func(b []byte) []byte { return append([]byte(nil), b...) }
	swap := func(w []byte, a, b, n int) []byte {
		x, y := clone(w[a:a+n]), clone(w[b:b+n])
		copy(w[a:], y)
		copy(w[b:], x)
		return w
	}

	cases := []struct {
		name      string
		firstBad  int // the first frame that must not be delivered
		alter     func(w []byte) []byte
		wantFrame bool // the error is ErrFrameAuth (else the stream ends short)
	}{
		{"byte of the first piece", 0, func(w []byte) []byte { w[piece(0, 0)+7] ^= 1; return w }, true},
		{"byte of a middle piece", 0, func(w []byte) []byte { w[piece(0, 2)+pz/2] ^= 0x80; return w }, true},
		{"byte of the last piece", 0, func(w []byte) []byte { w[piece(0, 3)+16] ^= 4; return w }, true},
		{"byte of a tag", 0, func(w []byte) []byte { w[tag(0, 1)+3] ^= 1; return w }, true},
		{"byte of the last tag", 2, func(w []byte) []byte { w[start[3]-1] ^= 1; return w }, true},
		{"two pieces swapped", 0, func(w []byte) []byte { return swap(w, piece(0, 1), piece(0, 2), pz) }, true},
		{"two pieces swapped with their tags", 0, func(w []byte) []byte {
			return swap(swap(w, piece(0, 1), piece(0, 2), pz), tag(0, 1), tag(0, 2), frameTagSize)
		}, true},
		{"a piece and its tag replayed in place of the next", 0, func(w []byte) []byte {
			copy(w[piece(0, 1):], clone(w[piece(0, 0):piece(0, 1)]))
			copy(w[tag(0, 1):], clone(w[tag(0, 0):tag(0, 1)]))
			return w
		}, true},
		{"a piece and its tag moved from another frame", 1, func(w []byte) []byte {
			copy(w[piece(1, 0):], clone(w[piece(2, 0):piece(2, 1)]))
			copy(w[tag(1, 0):], clone(w[tag(2, 0):tag(2, 1)]))
			return w
		}, true},
		{"frame replayed", 1, func(w []byte) []byte { return splice(w, start[1], start[1], clone(w[start[0]:start[1]])) }, true},
		{"frame dropped", 1, func(w []byte) []byte { return splice(w, start[1], start[2], nil) }, true},
		{"frames swapped", 1, func(w []byte) []byte {
			return splice(w, start[1], start[3], append(clone(w[start[2]:start[3]]), w[start[1]:start[2]]...))
		}, true},
		{"cut to its first pieces, length rewritten", 0, func(w []byte) []byte {
			w = splice(w, tag(0, 3), tag(0, 4), nil)        // the last tag
			w = splice(w, piece(0, 3), piece(0, 3)+17, nil) // the last piece
			binary.LittleEndian.PutUint32(w[start[0]:], 3*pz)
			return w
		}, true},
		{"lengthened, length rewritten", 0, func(w []byte) []byte {
			binary.LittleEndian.PutUint32(w[start[0]:], uint32(sizes[0]+5))
			return splice(w, piece(0, 3)+17, piece(0, 3)+17, []byte{1, 2, 3, 4, 5})
		}, true},
		{"the last tag cut off", 0, func(w []byte) []byte { return splice(w, tag(0, 3), tag(0, 4), nil) }, true},
		{"the stream cut inside a frame", 2, func(w []byte) []byte { return w[:piece(2, 1)+10] }, false},
		{"the stream cut inside the tags", 2, func(w []byte) []byte { return w[:tag(2, 1)+3] }, false},
	}
	for _, mode := range []RingSecurity{RingAuth, RingEncrypt} {
		for _, tc := range cases {
			t.Run(mode.String()+"/"+tc.name, func(t *testing.T) {
				frames := testFrames(sizes...)
				got, err := openStream(t, mode, tc.alter(sealStream(t, mode, frames)))
				if len(got) != tc.firstBad {
					t.Fatalf("%d frames delivered, want %d", len(got), tc.firstBad)
				}
				for i := range got {
					if !bytes.Equal(got[i], frames[i]) {
						t.Fatalf("frame %d delivered altered", i)
					}
				}
				if errors.Is(err, ErrFrameAuth) != tc.wantFrame || err == nil || err == io.EOF {
					t.Fatalf("the stream ended with %v, want a frame that fails authentication: %v", err, tc.wantFrame)
				}
			})
		}
	}
}

// nonceRecorder is an AEAD that notes the nonce of every Seal and Open.
type nonceRecorder struct {
	cipher.AEAD
	nonces *[]string
}

func (r nonceRecorder) Seal(dst, nonce, plaintext, ad []byte) []byte {
	*r.nonces = append(*r.nonces, string(nonce))
	return r.AEAD.Seal(dst, nonce, plaintext, ad)
}

func (r nonceRecorder) Open(dst, nonce, ciphertext, ad []byte) ([]byte, error) {
	*r.nonces = append(*r.nonces, string(nonce))
	return r.AEAD.Open(dst, nonce, ciphertext, ad)
}

// tagRecorder records the nonces of a frameCipher's RingAuth tags.
type tagRecorder struct {
	tagger
	nonces *[]string
}

func (r tagRecorder) tag(dst, nonce, data []byte) []byte {
	*r.nonces = append(*r.nonces, string(nonce))
	return r.tagger.tag(dst, nonce, data)
}

// No nonce repeats under a connection's key, over frames of equal and of
// different lengths, and the receiver uses the sender's nonces in order.
func TestFrameCipherNoncesNeverRepeat(t *testing.T) {
	for _, mode := range []RingSecurity{RingAuth, RingEncrypt} {
		t.Run(mode.String(), func(t *testing.T) {
			var sealed, opened []string
			s, _ := newFrameCipher(mode, testFrameKey)
			o, _ := newFrameCipher(mode, testFrameKey)
			s.aead, s.mac = nonceRecorder{s.aead, &sealed}, tagRecorder{s.mac, &sealed}
			o.aead, o.mac = nonceRecorder{o.aead, &opened}, tagRecorder{o.mac, &opened}
			sizes := []int{headerSize, headerSize, pz, 3*pz + 1, 3*pz + 1, 2 * pz, headerSize}
			var w bytes.Buffer
			for _, f := range testFrames(sizes...) {
				if err := s.write(&w, cutParts(f)); err != nil {
					t.Fatal(err)
				}
			}
			pieces := 0
			for _, n := range sizes {
				pieces += framePieces(n)
			}
			seen := map[string]bool{}
			for _, n := range sealed {
				if seen[n] {
					t.Fatalf("nonce %x sealed twice", n)
				}
				seen[n] = true
			}
			if len(sealed) != pieces {
				t.Fatalf("%d seals, want one per piece: %d", len(sealed), pieces)
			}
			for range sizes {
				var lb [4]byte
				io.ReadFull(&w, lb[:])
				n := int(binary.LittleEndian.Uint32(lb[:]))
				if err := o.read(&w, make([]byte, n)); err != nil {
					t.Fatal(err)
				}
			}
			if len(opened) != len(sealed) {
				t.Fatalf("%d opens, %d seals", len(opened), len(sealed))
			}
			for i := range sealed {
				if opened[i] != sealed[i] {
					t.Fatalf("piece %d: opened under %x, sealed under %x", i, opened[i], sealed[i])
				}
			}
		})
	}
}

// A dialer that tags whole frames (security byte 1 or 2) or puts a tag after
// each piece (4 or 5), as older vlp builds did, or knows no frame protection
// (0), is refused at the handshake with the security status, before any
// frame: the two builds never exchange frames that neither could check.
func TestTCPOlderFrameFormatRefused(t *testing.T) {
	gen, nodes := securedNodes(t, testGeneration("jobolder", 1, 2), RingAuth)
	old := []byte{0, 1, 2, 4, 5}
	for _, b := range old {
		conn, err := net.Dial("tcp", nodes[1].Addr())
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		h := hello{job: jobID(gen.Job), gen: gen.Number, from: 0, to: 1, security: b}
		if _, err := conn.Write(h.marshal()); err != nil {
			t.Fatal(err)
		}
		reply := make([]byte, hsSize)
		if _, err := io.ReadFull(conn, reply); err != nil {
			t.Fatalf("security byte %d: %v", b, err)
		}
		conn.Close()
		if reply[4] != hsSecurity {
			t.Fatalf("security byte %d: status %d, want %d (another frame protection)", b, reply[4], hsSecurity)
		}
	}
	for deadline := time.Now().Add(5 * time.Second); nodes[1].Rejected() != uint64(len(old)); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections rejected, want %d", nodes[1].Rejected(), len(old))
		}
	}
}

// BenchmarkFrameCipher is the CPU cost of protecting a 1 MiB frame, sealed
// into a buffer and opened from it, beside the plain copy the socket makes.
func BenchmarkFrameCipher(b *testing.B) {
	frame := testFrames(1 << 20)[0]
	for _, mode := range []RingSecurity{RingAuth, RingEncrypt} {
		b.Run(mode.String()+"/seal", func(b *testing.B) {
			c, _ := newFrameCipher(mode, testFrameKey)
			var w bytes.Buffer
			b.SetBytes(int64(len(frame)))
			for b.Loop() {
				w.Reset()
				c.write(&w, cutParts(frame))
			}
		})
		b.Run(mode.String()+"/open", func(b *testing.B) {
			s, _ := newFrameCipher(mode, testFrameKey)
			o, _ := newFrameCipher(mode, testFrameKey)
			var w bytes.Buffer
			dst := make([]byte, len(frame))
			b.SetBytes(int64(len(frame)))
			for b.Loop() {
				b.StopTimer()
				w.Reset()
				s.write(&w, cutParts(frame))
				w.Next(4)
				b.StartTimer()
				if err := o.read(&w, dst); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("copy", func(b *testing.B) {
		dst := make([]byte, len(frame))
		b.SetBytes(int64(len(frame)))
		for b.Loop() {
			copy(dst, frame)
		}
	})
}

package allreduce

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"io"
	"net"
)

// A protected frame (RingAuth, RingEncrypt) travels as its length, its bytes
// (with RingEncrypt encrypted) and then one 16-byte GCM tag for every piece
// of framePieceSize bytes (the last piece shorter):
//
//	n u32 (the frame's length) ‖ bytes [n] ‖ tag₀ ‖ tag₁ ‖ … ‖ tag_{k−1}   k = ⌈n / 64 KiB⌉ (at least 1)
//
// Tags over pieces let the receiver overlap its check with the transfer
// while the frame's bytes move as the plain ring moves them (one writev from
// the ring's buffer, a few large reads): it tags each piece as soon as the
// piece has arrived, so that when the tags come it only compares them, and a
// frame's check no longer waits for its last byte. The sender tags (or
// encrypts) the frame before its one write. With RingEncrypt the receiver
// decrypts once the tags are in.
//
// Nothing is weaker than with one tag per frame: every byte of the frame is
// under some tag (and with RingEncrypt encrypted), and a piece's nonce is the
// connection's running piece counter (0, 1, … over all pieces of all frames;
// never sent, never reused under the key) with the frame's length n beside
// it. A piece therefore verifies only at its own position in the stream and
// in a frame of its own length: a replayed, dropped, reordered, moved or
// altered piece or tag, a frame cut short or lengthened (n altered and bytes
// removed or added) fail a tag before the frame is delivered. A frame's bytes
// are handed to the ring only once every tag has been compared (in constant
// time).
const (
	// framePieceSize is the bytes under one tag. 64 KiB: a piece's tag takes
	// at most about 15 µs (GMAC runs at 4.5–14 GB/s in Go's standard library
	// on the CPUs measured, ~50 GB/s in gmac_amd64.s), so a receiver keeps up
	// with the bytes as they arrive, and the tags add 0.02% to the bytes on
	// the wire.
	framePieceSize = 64 << 10
	// frameTagSize is the bytes of one piece's tag.
	frameTagSize = 16
)

// framePieces is the number of pieces of a frame of n bytes (a frame always
// has at least one, so that an empty frame is authenticated too).
func framePieces(n int) int {
	return max(1, (n+framePieceSize-1)/framePieceSize)
}

// protectedLen is the bytes a protected frame of n bytes takes on the wire
// after its length.
func protectedLen(n int) int { return n + framePieces(n)*frameTagSize }

// frameCipher protects the frames of one direction of one connection. It is
// not safe for concurrent use: the sender holds its peer's lock, the
// receiver has one read loop.
type frameCipher struct {
	mode  RingSecurity
	aead  cipher.AEAD // RingEncrypt's sealing and opening (nil with RingAuth)
	mac   tagger      // RingAuth's tags: a *gmac (nil with RingEncrypt)
	seq   uint64      // pieces sealed or opened on this connection so far
	nonce [12]byte
	head  [4]byte
	tags  []byte // the frame's tags, as sent or as received
	want  []byte // receiver, RingAuth: the tags computed over the bytes received
	buf   []byte // sender, RingEncrypt: the frame's sealed bytes; receiver: a piece and its tag
	piece []byte // sender, RingAuth: a piece that spans parts
}

// tagger appends the tag of data under nonce to dst (a *gmac).
type tagger interface {
	tag(dst, nonce, data []byte) []byte
}

// newFrameCipher returns nil for RingPlain.
func newFrameCipher(mode RingSecurity, key []byte) (*frameCipher, error) {
	if mode == RingPlain {
		return nil, nil
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("allreduce: frame cipher: %w", err)
	}
	c := &frameCipher{mode: mode}
	if mode == RingEncrypt {
		c.aead, err = cipher.NewGCM(block)
	} else {
		c.mac, err = newGMAC(block)
	}
	if err != nil {
		return nil, fmt.Errorf("allreduce: frame cipher: %w", err)
	}
	return c, nil
}

// next returns the nonce of the next piece of a frame of n bytes: n and the
// piece counter. Every call consumes a counter value, so a nonce never
// repeats under one key whatever n is.
func (c *frameCipher) next(n int) []byte {
	binary.LittleEndian.PutUint32(c.nonce[0:], uint32(n))
	binary.LittleEndian.PutUint64(c.nonce[4:], c.seq)
	c.seq++
	return c.nonce[:]
}

// grow returns b with room for n bytes, reusing it when it has.
func grow(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}

// write seals the frame that is the concatenation of parts and writes it to
// w with one writev: its length, its bytes (with RingAuth straight from the
// parts, not copied; with RingEncrypt encrypted into c.buf) and the tags. One
// write per frame keeps a frame whole as far as a peer that leaves is
// concerned: a write after the peer closed fails at the next frame, not
// halfway through this one, which gives the peer's goodbye time to arrive. An
// error leaves the stream unusable.
func (c *frameCipher) write(w io.Writer, parts [][]byte) error {
	n := totalLen(parts)
	k := framePieces(n)
	binary.LittleEndian.PutUint32(c.head[:], uint32(n))
	c.tags = grow(c.tags, k*frameTagSize)
	pr := pieceReader{parts: parts}
	bufs := make(net.Buffers, 0, len(parts)+2)
	bufs = append(bufs, c.head[:])
	if c.mode == RingEncrypt {
		c.buf = grow(c.buf, n+frameTagSize)
		for i := range k {
			lo := i * framePieceSize
			hi := min(lo+framePieceSize, n)
			// A piece that spans parts is gathered into its place in c.buf
			// and sealed there; either way its tag lands where the next
			// piece goes, and is moved to c.tags before that one is sealed.
			piece := pr.next(hi-lo, c.buf[lo:])
			c.aead.Seal(c.buf[lo:lo], c.next(n), piece, nil)
			copy(c.tags[i*frameTagSize:], c.buf[hi:hi+frameTagSize])
		}
		bufs = append(bufs, c.buf[:n])
	} else {
		c.piece = grow(c.piece, framePieceSize)
		for i := range k {
			piece := pr.next(min(framePieceSize, n-i*framePieceSize), c.piece)
			c.mac.tag(c.tags[i*frameTagSize:i*frameTagSize], c.next(n), piece)
		}
		for _, p := range parts {
			if len(p) > 0 {
				bufs = append(bufs, p)
			}
		}
	}
	bufs = append(bufs, c.tags)
	_, err := bufs.WriteTo(w)
	return err
}

// read reads the rest of a protected frame whose length n has been read, into
// b (len(b) == n), checks every piece's tag and, with RingEncrypt, decrypts
// it in place. An error wrapping ErrFrameAuth means a tag did not match; b's
// bytes are then not to be used.
func (c *frameCipher) read(r io.Reader, b []byte) error {
	n := len(b)
	k := framePieces(n)
	first := c.seq
	c.tags = grow(c.tags, k*frameTagSize)
	if c.mode == RingEncrypt {
		if _, err := io.ReadFull(r, b); err != nil {
			return err
		}
		if _, err := io.ReadFull(r, c.tags); err != nil {
			return err
		}
		c.buf = grow(c.buf, framePieceSize+frameTagSize)
		for i := range k {
			lo := i * framePieceSize
			hi := min(lo+framePieceSize, n)
			sealed := c.buf[:hi-lo+frameTagSize]
			copy(sealed, b[lo:hi])
			copy(sealed[hi-lo:], c.tags[i*frameTagSize:])
			if _, err := c.aead.Open(b[lo:lo], c.next(n), sealed, nil); err != nil {
				return pieceError(i, k, n, first)
			}
		}
		return nil
	}
	// Tag each piece as soon as it is in, while the rest arrives.
	c.want = grow(c.want, k*frameTagSize)
	got, done := 0, 0
	for done < k {
		m, err := r.Read(b[got:])
		got += m
		for ; done < k && min((done+1)*framePieceSize, n) <= got; done++ {
			lo := done * framePieceSize
			c.mac.tag(c.want[done*frameTagSize:done*frameTagSize], c.next(n), b[lo:min(lo+framePieceSize, n)])
		}
		if err != nil && done < k {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	if _, err := io.ReadFull(r, c.tags); err != nil {
		return err
	}
	if subtle.ConstantTimeCompare(c.tags, c.want) != 1 {
		for i := range k {
			if subtle.ConstantTimeCompare(c.tags[i*frameTagSize:(i+1)*frameTagSize], c.want[i*frameTagSize:(i+1)*frameTagSize]) != 1 {
				return pieceError(i, k, n, first)
			}
		}
	}
	return nil
}

func pieceError(i, k, n int, first uint64) error {
	return fmt.Errorf("%w: piece %d (of %d) of a %d-byte frame, piece %d of the connection", ErrFrameAuth, i, k, n, first+uint64(i))
}

// pieceReader cuts the concatenation of parts into consecutive pieces
// without copying, except a piece that spans parts, which it gathers.
type pieceReader struct {
	parts [][]byte
	i     int // current part
	off   int // offset in it
}

// next returns the next m bytes: a slice of a part if they lie within one,
// else gathered into scratch (cap >= m).
func (p *pieceReader) next(m int, scratch []byte) []byte {
	for p.i < len(p.parts) && p.off == len(p.parts[p.i]) {
		p.i, p.off = p.i+1, 0
	}
	if m == 0 {
		return nil
	}
	if cur := p.parts[p.i]; len(cur)-p.off >= m {
		b := cur[p.off : p.off+m]
		p.off += m
		return b
	}
	out := scratch[:m]
	for got := 0; got < m; {
		for p.off == len(p.parts[p.i]) {
			p.i, p.off = p.i+1, 0
		}
		k := copy(out[got:], p.parts[p.i][p.off:])
		got += k
		p.off += k
	}
	return out
}

package allreduce

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// RingSecurity says how the TCP transport protects the frames that follow the
// handshake. Both ends of a connection must use the same: the mode travels in
// the hello, which both handshake proofs cover, and a mismatch is refused.
//
// Every mode but RingPlain keys each connection with its own AES-256 key,
// derived with HKDF-SHA256 from the job token, both handshake nonces and the
// hello (job, generation, both ranks): a key is bound to one generation and
// one direction, and the token itself never keys a frame. Each frame carries
// a 16-byte GCM tag over its bytes (GCM binds their length), with the frame's
// sequence number on the connection (0, 1, …) as the nonce; the sequence
// number is not sent, so a replayed, reordered, dropped or altered frame fails
// its tag. A frame that fails is a peer fault: the connection is closed and
// the ring sees a lost peer (a new generation), never the frame's bytes.
type RingSecurity uint8

const (
	// RingAuth (the default) authenticates every frame (AES-GCM as a MAC,
	// GMAC); frames travel in clear text.
	RingAuth RingSecurity = iota
	// RingEncrypt authenticates and encrypts every frame (AES-256-GCM).
	RingEncrypt
	// RingPlain sends frames unprotected after the authenticated handshake:
	// anyone on the path can read and alter gradients. For a trusted network,
	// and as the benchmark's baseline.
	RingPlain
)

// ErrFrameAuth: a TCP frame failed its authentication tag (altered,
// replayed, reordered or cut). It reaches the Ring as the cause of a
// *PeerError, so it is handled as a lost peer.
var ErrFrameAuth = errors.New("allreduce: frame failed authentication")

// frameTagSize is the bytes a protected frame adds on the wire.
const frameTagSize = 16

// ParseRingSecurity reads "auth", "encrypt" or "plain".
func ParseRingSecurity(s string) (RingSecurity, error) {
	switch s {
	case "auth", "":
		return RingAuth, nil
	case "encrypt":
		return RingEncrypt, nil
	case "plain":
		return RingPlain, nil
	}
	return 0, configErr("ring security %q: want auth, encrypt or plain", s)
}

func (s RingSecurity) String() string {
	switch s {
	case RingAuth:
		return "auth"
	case RingEncrypt:
		return "encrypt"
	case RingPlain:
		return "plain"
	}
	return fmt.Sprintf("RingSecurity(%d)", uint8(s))
}

// wire is the mode's byte in the hello; 0 (what a peer from before frame
// protection sends) matches no mode.
func (s RingSecurity) wire() byte { return byte(s) + 1 }

func (s RingSecurity) valid() bool { return s <= RingPlain }

// frameKey derives a connection's frame key from the job token and the
// handshake: the hello (with the dialer's nonce) and the listener's nonce.
func frameKey(token, helloBytes, nonceL []byte) ([]byte, error) {
	return hkdf.Key(sha256.New, token, nonceL, "vlp-ring-frames-v1\x00"+string(helloBytes), 32)
}

// frameCipher protects the frames of one direction of one connection. It is
// not safe for concurrent use: the sender holds its peer's lock, the
// receiver has one read loop.
type frameCipher struct {
	mode  RingSecurity
	aead  cipher.AEAD
	seq   uint64
	nonce [12]byte
	buf   []byte // sender: the frame being sealed
}

// newFrameCipher returns nil for RingPlain.
func newFrameCipher(mode RingSecurity, key []byte) (*frameCipher, error) {
	if mode == RingPlain {
		return nil, nil
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &frameCipher{mode: mode, aead: aead}, nil
}

func (c *frameCipher) next() []byte {
	binary.LittleEndian.PutUint64(c.nonce[4:], c.seq)
	c.seq++
	return c.nonce[:]
}

// seal returns the bytes to write for one frame: its length prefix (the
// protected length, tag included), the frame's bytes (encrypted with
// RingEncrypt) and the tag. The result is valid until the next seal.
func (c *frameCipher) seal(parts [][]byte) []byte {
	size := totalLen(parts)
	need := 4 + size + frameTagSize
	if cap(c.buf) < need {
		c.buf = make([]byte, need)
	}
	b := c.buf[:4+size]
	binary.LittleEndian.PutUint32(b, uint32(size+frameTagSize))
	off := 4
	for _, p := range parts {
		off += copy(b[off:], p)
	}
	nonce := c.next()
	if c.mode == RingEncrypt {
		return c.aead.Seal(b[:4], nonce, b[4:], nil) // in place
	}
	return c.aead.Seal(b, nonce, nil, b[4:]) // appends the tag: a MAC of the frame
}

// open checks (and with RingEncrypt decrypts, in place) one frame as read
// from the wire, tag included. It returns the frame without its tag,
// aliasing b.
func (c *frameCipher) open(b []byte) ([]byte, error) {
	if len(b) < frameTagSize {
		return nil, fmt.Errorf("%w: frame of %d bytes has no tag", ErrFrameAuth, len(b))
	}
	seq, nonce := c.seq, c.next()
	n := len(b) - frameTagSize
	var err error
	if c.mode == RingEncrypt {
		_, err = c.aead.Open(b[:0], nonce, b, nil)
	} else {
		_, err = c.aead.Open(nil, nonce, b[n:], b[:n])
	}
	if err != nil {
		return nil, fmt.Errorf("%w: frame %d of the connection", ErrFrameAuth, seq)
	}
	return b[:n], nil
}

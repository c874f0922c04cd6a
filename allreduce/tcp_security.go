package allreduce

import (
	"crypto/hkdf"
	"crypto/sha256"
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
// one direction, and the token itself never keys a frame. Every 64 KiB piece
// of a frame has a 16-byte GCM tag (the tags follow the frame's bytes) whose
// nonce is the piece's number on the connection (0, 1, …; not sent) beside
// the frame's length (tcp_frames.go), so a replayed, reordered, dropped, cut
// or altered piece fails its tag. A frame that fails is a peer fault: the connection is
// closed and the ring sees a lost peer (a new generation), never the frame's
// bytes.
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

// wire is the mode's byte in the hello, which names the frame format too: 0
// (a peer from before frame protection), 1 and 2 (auth and encrypt with one
// tag per frame) and 4 and 5 (a tag after each piece) match no mode of this
// build, so builds that frame differently refuse each other at the handshake
// instead of exchanging frames neither can check.
func (s RingSecurity) wire() byte {
	switch s {
	case RingAuth:
		return 6
	case RingEncrypt:
		return 7
	}
	return 3 // RingPlain, whose frames have not changed
}

// describeWireSecurity names a hello's security byte, for the log of a
// refused connection.
func describeWireSecurity(b byte) string {
	switch b {
	case 0:
		return "no frame protection (a vlp build from before it)"
	case 1, 2:
		return "one tag per frame (an older vlp build)"
	case 4, 5:
		return "a tag after each piece (an older vlp build)"
	}
	for _, s := range []RingSecurity{RingAuth, RingEncrypt, RingPlain} {
		if s.wire() == b {
			return s.String()
		}
	}
	return fmt.Sprintf("unknown (%d)", b)
}

func (s RingSecurity) valid() bool { return s <= RingPlain }

// frameKey derives a connection's frame key from the job token and the
// handshake: the hello (with the dialer's nonce) and the listener's nonce.
func frameKey(token, helloBytes, nonceL []byte) ([]byte, error) {
	return hkdf.Key(sha256.New, token, nonceL, "vlp-ring-frames-v3\x00"+string(helloBytes), 32)
}

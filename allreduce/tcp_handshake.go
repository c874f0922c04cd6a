package allreduce

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"time"
)

// The TCP handshake authenticates both ends with the job token without
// sending it: each side proves knowledge of the token by an HMAC-SHA256 over
// both fresh nonces and the hello (job tag, generation, ranks), so a recorded
// handshake cannot be replayed and neither side can be used as an oracle for
// the other's proof (the two MACs carry different labels).
//
//	dialer → listener  hello, 64 bytes: "VLPH", version, security, 2×0, job u64, gen u64,
//	                   from u32, to u32, nonceD [16], 16×0
//	listener → dialer  reply, 64 bytes: "VLPH", status, 3×0, newest gen u64,
//	                   nonceL [16], macL [32] = HMAC(token, "vlp-listener" ‖ hello ‖ nonceL)
//	dialer → listener  macD [32] = HMAC(token, "vlp-dialer" ‖ hello ‖ nonceL)
//	listener → dialer  verdict, 1 byte: status
//
// After an OK verdict the connection carries frames from dialer to listener
// only, each prefixed by its length (u32, little-endian); unless the security
// is RingPlain, the frame's bytes travel in pieces, each followed by its tag
// under the key both ends derive from the token and the handshake
// (tcp_security.go, tcp_frames.go). The security byte names the frame format
// as well as the mode (RingSecurity.wire).
const (
	hsMagic   = 0x48504c56 // "VLPH"
	hsSize    = 64
	hsMACSize = sha256.Size
)

// Handshake statuses.
const (
	hsOK       = 0
	hsWrongJob = 1 // the listener serves another job
	hsStale    = 2 // the listener has moved past this generation
	hsWrongTo  = 3 // the listener is not this rank in this generation
	hsBadAuth  = 4 // the dialer's proof failed
	hsBusy     = 5 // too many connections wait for their generation
	hsSecurity = 6 // the listener protects frames another way
)

func hsError(status byte, newest uint64) error {
	switch status {
	case hsWrongJob:
		return fmt.Errorf("%w: the peer serves another job", ErrConfig)
	case hsStale:
		return fmt.Errorf("%w: the peer is at generation %d", ErrStale, newest)
	case hsWrongTo:
		return fmt.Errorf("%w: the peer holds another rank in this generation", ErrConfig)
	case hsBadAuth:
		return fmt.Errorf("%w: the peer rejected our job token", ErrAuth)
	case hsBusy:
		return fmt.Errorf("allreduce: the peer has too many connections waiting")
	case hsSecurity:
		return fmt.Errorf("%w: the peer protects ring frames another way (TCPConfig.Security, --ring-security) or frames them in another format (another vlp version)", ErrConfig)
	}
	return fmt.Errorf("allreduce: handshake status %d", status)
}

type hello struct {
	job      uint64
	gen      uint64
	from, to uint32
	security byte // RingSecurity.wire()
	nonce    [16]byte
}

func (h *hello) marshal() []byte {
	b := make([]byte, hsSize)
	le := binary.LittleEndian
	le.PutUint32(b[0:], hsMagic)
	b[4] = wireVersion
	b[5] = h.security
	le.PutUint64(b[8:], h.job)
	le.PutUint64(b[16:], h.gen)
	le.PutUint32(b[24:], h.from)
	le.PutUint32(b[28:], h.to)
	copy(b[32:48], h.nonce[:])
	return b
}

func parseHello(b []byte) (hello, error) {
	le := binary.LittleEndian
	if le.Uint32(b[0:]) != hsMagic || b[4] != wireVersion {
		return hello{}, fmt.Errorf("not a vlp all-reduce hello")
	}
	h := hello{job: le.Uint64(b[8:]), gen: le.Uint64(b[16:]), from: le.Uint32(b[24:]), to: le.Uint32(b[28:]), security: b[5]}
	copy(h.nonce[:], b[32:48])
	return h, nil
}

func hsMAC(token []byte, label string, helloBytes, nonceL []byte) []byte {
	m := hmac.New(sha256.New, token)
	m.Write([]byte(label))
	m.Write(helloBytes)
	m.Write(nonceL)
	return m.Sum(nil)
}

// clientHandshake runs the dialer's side on a fresh connection and returns
// the connection's frame key.
func clientHandshake(conn net.Conn, token []byte, h hello, deadline time.Time) ([]byte, error) {
	conn.SetDeadline(deadline)
	defer conn.SetDeadline(time.Time{})
	if _, err := rand.Read(h.nonce[:]); err != nil {
		return nil, err
	}
	hb := h.marshal()
	if _, err := conn.Write(hb); err != nil {
		return nil, err
	}
	reply := make([]byte, hsSize)
	if _, err := io.ReadFull(conn, reply); err != nil {
		return nil, err
	}
	if binary.LittleEndian.Uint32(reply[0:]) != hsMagic {
		return nil, fmt.Errorf("allreduce: the peer does not speak the vlp handshake")
	}
	if status := reply[4]; status != hsOK {
		return nil, hsError(status, binary.LittleEndian.Uint64(reply[8:]))
	}
	nonceL := reply[16:32]
	if !hmac.Equal(reply[32:64], hsMAC(token, "vlp-listener", hb, nonceL)) {
		return nil, fmt.Errorf("%w: the peer does not know the job token", ErrAuth)
	}
	if _, err := conn.Write(hsMAC(token, "vlp-dialer", hb, nonceL)); err != nil {
		return nil, err
	}
	var verdict [1]byte
	if _, err := io.ReadFull(conn, verdict[:]); err != nil {
		return nil, err
	}
	if verdict[0] != hsOK {
		return nil, hsError(verdict[0], 0)
	}
	return frameKey(token, hb, nonceL)
}

// serverHandshake runs the listener's side and returns the hello and the
// connection's frame key. decide maps the hello to a status before any proof
// is exchanged (wrong job, stale generation, …).
func serverHandshake(conn net.Conn, token []byte, deadline time.Time, decide func(hello) (byte, uint64)) (hello, []byte, error) {
	conn.SetDeadline(deadline)
	defer conn.SetDeadline(time.Time{})
	hb := make([]byte, hsSize)
	if _, err := io.ReadFull(conn, hb); err != nil {
		return hello{}, nil, err
	}
	h, err := parseHello(hb)
	if err != nil {
		return h, nil, err
	}
	reply := make([]byte, hsSize)
	binary.LittleEndian.PutUint32(reply[0:], hsMagic)
	status, newest := decide(h)
	reply[4] = status
	binary.LittleEndian.PutUint64(reply[8:], newest)
	if status != hsOK {
		conn.Write(reply)
		return h, nil, hsError(status, newest)
	}
	nonceL := reply[16:32]
	if _, err := rand.Read(nonceL); err != nil {
		return h, nil, err
	}
	copy(reply[32:64], hsMAC(token, "vlp-listener", hb, nonceL))
	if _, err := conn.Write(reply); err != nil {
		return h, nil, err
	}
	macD := make([]byte, hsMACSize)
	if _, err := io.ReadFull(conn, macD); err != nil {
		return h, nil, err
	}
	if !hmac.Equal(macD, hsMAC(token, "vlp-dialer", hb, nonceL)) {
		conn.Write([]byte{hsBadAuth})
		return h, nil, fmt.Errorf("%w: wrong job token", ErrAuth)
	}
	if _, err := conn.Write([]byte{hsOK}); err != nil {
		return h, nil, err
	}
	key, err := frameKey(token, hb, nonceL)
	return h, key, err
}

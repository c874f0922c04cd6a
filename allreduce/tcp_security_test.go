package allreduce

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"net"
	"sync"
	"testing"
	"time"
)

// relayAttack is what a tampering relay does to the dialer → listener frame
// stream, from its frame `at` on (frames counted after the handshake).
type relayAttack int

const (
	passThrough   relayAttack = iota
	flipByte                  // flip one bit in the payload of the first data frame from `at` on
	replayFrame               // send frame `at` twice
	dropFrame                 // never deliver frame `at`
	swapFrames                // deliver frames `at` and `at+1` in the other order
	flipLastTag               // flip one bit in the last tag of the first frame of several pieces from `at` on
	swapPieces                // swap the first two pieces (and tags) of the first frame of several pieces from `at` on
	truncateFrame             // cut the first frame of several pieces from `at` on to its first piece, length rewritten
)

// relay sits between a ring rank and its right neighbour's TCP listener, as
// an attacker on the network would: it forwards the handshake untouched,
// records the frame stream and alters it as told.
type relay struct {
	*proxy
	sec    RingSecurity // how the frames are laid out on the wire
	attack relayAttack
	at     int

	capMu    sync.Mutex
	captured bytes.Buffer // every byte the dialer sent after the handshake
}

func newRelay(t *testing.T, target string, sec RingSecurity, attack relayAttack, at int) *relay {
	t.Helper()
	r := &relay{sec: sec, attack: attack, at: at}
	r.proxy = startProxy(t, &proxy{target: target, up: r.forward})
	return r
}

func (r *relay) Captured() []byte {
	r.capMu.Lock()
	defer r.capMu.Unlock()
	return append([]byte(nil), r.captured.Bytes()...)
}

// forward copies the dialer's side: the hello and its proof (64 + 32 bytes)
// as they are, then frame by frame.
func (r *relay) forward(dst, src net.Conn) {
	for _, size := range []int{hsSize, hsMACSize} { // the proof waits for the reply
		hs := make([]byte, size)
		if _, err := io.ReadFull(src, hs); err != nil {
			return
		}
		if _, err := dst.Write(hs); err != nil {
			return
		}
	}
	var held []byte
	flipped := false
	for k := 0; ; k++ {
		var lb [4]byte
		if _, err := io.ReadFull(src, lb[:]); err != nil {
			return
		}
		n := int(binary.LittleEndian.Uint32(lb[:]))
		wireLen := n
		if r.sec != RingPlain {
			wireLen = protectedLen(n)
		}
		frame := make([]byte, 4+wireLen)
		copy(frame, lb[:])
		if _, err := io.ReadFull(src, frame[4:]); err != nil {
			return
		}
		r.capMu.Lock()
		r.captured.Write(frame)
		r.capMu.Unlock()
		out := [][]byte{frame}
		if r.attack == flipByte && k >= r.at && !flipped && len(frame) > 4+headerSize+frameTagSize {
			frame[4+headerSize+(len(frame)-4-headerSize-frameTagSize)/2] ^= 0x10
			flipped = true
		}
		if k >= r.at && !flipped && n > framePieceSize {
			const p = framePieceSize
			data, tags := frame[4:4+n], frame[4+n:]
			switch r.attack {
			case flipLastTag:
				frame[len(frame)-1] ^= 0x01
				flipped = true
			case swapPieces: // the first piece's bytes moved after the others'
				copy(data, append(append([]byte(nil), data[p:]...), data[:p]...))
				flipped = true
			case truncateFrame: // the first piece and its tag, as a frame of p bytes
				cut := binary.LittleEndian.AppendUint32(nil, p)
				cut = append(append(cut, data[:p]...), tags[:frameTagSize]...)
				out = [][]byte{cut}
				flipped = true
			}
		}
		if k == r.at {
			switch r.attack {
			case replayFrame:
				out = [][]byte{frame, frame}
			case dropFrame:
				out = nil
			case swapFrames:
				held, out = frame, nil
			}
		}
		if k == r.at+1 && held != nil {
			out = [][]byte{frame, held}
		}
		for _, b := range out {
			if _, err := dst.Write(b); err != nil {
				return
			}
		}
	}
}

// securedNodes listens on loopback for each rank with the given security.
func securedNodes(t testing.TB, gen Generation, sec RingSecurity) (Generation, []*TCPNode) {
	t.Helper()
	return listenNodes(t, gen, TCPConfig{Token: []byte(testToken), Security: sec})
}

// reduceAll runs one all-reduce of random inputs on every ring and returns
// the inputs, the results and each rank's error.
func reduceAll(t *testing.T, rings []*Ring, L int) (inputs, bufs [][]float32, errs []error) {
	t.Helper()
	inputs = randomInputs(7, len(rings), L)
	bufs = clone2(inputs)
	ctx := ctxTimeout(t, 20*time.Second)
	errs = onAll(rings, func(rank int, r *Ring) error {
		_, err := r.AllReduce(ctx, bufs[rank], nil)
		return err
	})
	return inputs, bufs, errs
}

// A relay between rank 0 and rank 1 that alters, replays, drops or reorders
// one frame, or one piece of a frame (a tag, two pieces swapped, a frame cut
// to its first piece with its length rewritten), is detected by rank 1 (a
// piece fails its tag), and every rank returns a lost peer: nothing is
// summed from the altered bytes, nobody crashes, and the next generation,
// without the relay, reduces correctly. The piece attacks run with chunks of
// 100 KB (segments of 400 KB), so that data frames have two pieces.
func TestTCPTamperingRelayDetected(t *testing.T) {
	const n = 2
	for _, sec := range []RingSecurity{RingAuth, RingEncrypt} {
		for _, tc := range []struct {
			name   string
			attack relayAttack
			pieces bool
		}{
			{"flip", flipByte, false}, {"replay", replayFrame, false}, {"drop", dropFrame, false}, {"swap", swapFrames, false},
			{"flip-last-tag", flipLastTag, true}, {"swap-pieces", swapPieces, true}, {"truncate", truncateFrame, true},
		} {
			t.Run(sec.String()+"/"+tc.name, func(t *testing.T) {
				L, cfg := 20000, testConfig(t)
				if tc.pieces {
					L, cfg.ChunkBytes, cfg.WindowBytes = 200000, 128<<10, 1<<20
				}
				gen, nodes := securedNodes(t, testGeneration("jobtamper", 1, n), sec)
				rel := newRelay(t, nodes[1].Addr(), sec, tc.attack, 5)
				attacked := gen
				attacked.Members = append([]Member(nil), gen.Members...)
				attacked.Members[1].Addr = rel.Addr()
				_, ts := tcpTransports(t, attacked, nodes)
				// Both connections first, under a generous deadline: a ring's
				// first frame may be a heartbeat, whose handshake through the
				// relay gets only HeartbeatInterval, and a handshake that one
				// side gives up is a lost peer the attack did not cause.
				for _, c := range [][2]int{{0, 1}, {1, 0}} {
					if err := ts[c[0]].(*TCPTransport).Connect(ctxTimeout(t, 10*time.Second), c[1]); err != nil {
						t.Fatalf("rank %d to %d: %v", c[0], c[1], err)
					}
				}
				rings := newRings(t, attacked, ts, cfg)
				_, _, errs := reduceAll(t, rings, L)
				checkLost(t, errs, -1, -1)
				var pe *PeerError
				if !errors.As(errs[1], &pe) || pe.Rank != 0 || !errors.Is(errs[1], ErrFrameAuth) {
					t.Fatalf("rank 1: %v, want rank 0 lost by a frame that failed authentication", errs[1])
				}
				if got := nodes[1].FrameAuthFailures(); got != 1 {
					t.Fatalf("rank 1's node counted %d frames that failed authentication, want 1", got)
				}
				closeAll(rings)

				next := gen
				next.Number++
				_, ts = tcpTransports(t, next, nodes)
				reduceAndCheck(t, newRings(t, next, ts, testConfig(t)), 1000, 2)
			})
		}
	}
}

// The same relay on a RingPlain ring alters the sum and nobody notices: what
// the frame tags are for.
func TestTCPPlainRingTamperingGoesUnnoticed(t *testing.T) {
	const n, L = 2, 20000
	gen, nodes := securedNodes(t, testGeneration("jobplain", 1, n), RingPlain)
	rel := newRelay(t, nodes[1].Addr(), RingPlain, flipByte, 5)
	gen.Members[1].Addr = rel.Addr()
	_, ts := tcpTransports(t, gen, nodes)
	rings := newRings(t, gen, ts, testConfig(t))
	inputs, bufs, errs := reduceAll(t, rings, L)
	want := serialSum(inputs, Float32)
	for rank, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v (the plain ring should not notice)", rank, err)
		}
	}
	differ := 0
	for i := range want {
		if math.Float32bits(bufs[1][i]) != math.Float32bits(want[i]) {
			differ++
		}
	}
	if differ == 0 {
		t.Fatal("the relay's flipped bit did not change the sum: the test proves nothing")
	}
	t.Logf("plain ring: %d elements silently wrong", differ)
}

// With RingEncrypt a relay sees no gradient bytes; with RingAuth it does (the
// frames are authenticated, not secret).
func TestTCPEncryptHidesFrames(t *testing.T) {
	const n, L = 2, 4096
	for _, tc := range []struct {
		sec     RingSecurity
		visible bool
	}{{RingAuth, true}, {RingEncrypt, false}} {
		t.Run(tc.sec.String(), func(t *testing.T) {
			gen, nodes := securedNodes(t, testGeneration("jobsecret", 1, n), tc.sec)
			rel := newRelay(t, nodes[1].Addr(), tc.sec, passThrough, -1)
			gen.Members[1].Addr = rel.Addr()
			_, ts := tcpTransports(t, gen, nodes)
			rings := newRings(t, gen, ts, testConfig(t))
			bufs := make([][]float32, n)
			for r := range bufs {
				bufs[r] = make([]float32, L)
				for i := range bufs[r] {
					bufs[r][i] = 1234.5 // a pattern to look for on the wire
				}
			}
			ctx := ctxTimeout(t, 20*time.Second)
			for rank, err := range onAll(rings, func(rank int, r *Ring) error {
				_, err := r.AllReduce(ctx, bufs[rank], nil)
				return err
			}) {
				if err != nil {
					t.Fatalf("rank %d: %v", rank, err)
				}
			}
			var pattern []byte
			for range 16 {
				pattern = binary.LittleEndian.AppendUint32(pattern, math.Float32bits(1234.5))
			}
			captured := rel.Captured()
			if len(captured) < L {
				t.Fatalf("the relay saw %d bytes", len(captured))
			}
			if got := bytes.Contains(captured, pattern); got != tc.visible {
				t.Fatalf("gradient bytes visible to the relay: %v, want %v", got, tc.visible)
			}
		})
	}
}

// Nodes that protect frames differently refuse each other at the handshake,
// naming the setting, instead of exchanging frames neither can read.
func TestTCPSecurityMismatchRefused(t *testing.T) {
	gen, nodes := securedNodes(t, testGeneration("jobmix", 1, 2), RingAuth)
	other, err := ListenTCP("127.0.0.1:0", TCPConfig{Job: gen.Job, Token: []byte(testToken), Security: RingEncrypt, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	gen.Members[1].Addr = other.Addr()
	tr, err := nodes[0].Join(gen, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	err = tr.Connect(ctxTimeout(t, 5*time.Second), 1)
	if !errors.Is(err, ErrConfig) || !bytes.Contains([]byte(err.Error()), []byte("--ring-security")) {
		t.Fatalf("got %v, want a configuration error naming --ring-security", err)
	}
}

func TestParseRingSecurity(t *testing.T) {
	for _, s := range []string{"auth", "encrypt", "plain"} {
		sec, err := ParseRingSecurity(s)
		if err != nil || sec.String() != s {
			t.Fatalf("%s: %v %v", s, sec, err)
		}
	}
	if _, err := ParseRingSecurity("tls"); !errors.Is(err, ErrConfig) {
		t.Fatalf("tls: %v", err)
	}
}

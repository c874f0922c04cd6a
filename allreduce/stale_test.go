package allreduce

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// forged makes a frame with the given header and payload.
func forged(h header, meta, payload []byte) []byte {
	b := make([]byte, headerSize+pad8(len(meta))+len(payload))
	h.metaLen = uint32(len(meta))
	h.put(b)
	copy(b[headerSize:], meta)
	copy(b[headerSize+pad8(len(meta)):], payload)
	return b
}

// junkFrames are frames a rank must drop: garbage, another job, an older
// generation, a later op, a wrong step or offset, a sender that is not the
// left neighbour or not a rank at all. Every one carries values that would
// change the sum if it were added.
func junkFrames(rng *rand.Rand, job uint64, gen uint64, rank, size, L int) [][]byte {
	left := uint32((rank + size - 1) % size)
	seg := max(1, L/size)
	payload := f32Bytes(make([]float32, min(seg, 32)))
	for i := range payload {
		payload[i] = byte(rng.IntN(256)) | 1
	}
	cnt := uint32(len(payload) / 4)
	ok := header{kind: kindReduceScatter, dtype: Float32, job: job, gen: gen, op: 1, from: left, count: cnt, total: uint64(L)}
	var out [][]byte
	garbage := make([]byte, rng.IntN(200))
	for i := range garbage {
		garbage[i] = byte(rng.IntN(256))
	}
	out = append(out, garbage)
	variants := []func(h *header){
		func(h *header) { h.job ^= 1 },                         // another job
		func(h *header) { h.gen-- },                            // an older generation
		func(h *header) { h.gen++ },                            // a newer one
		func(h *header) { h.op = 1 << 40 },                     // a later op
		func(h *header) { h.step = 7 },                         // a wrong ring step
		func(h *header) { h.offset = 3 },                       // a wrong offset
		func(h *header) { h.from = uint32(rank) },              // from itself
		func(h *header) { h.from = uint32(size) },              // from no rank
		func(h *header) { h.from = (left + 2) % uint32(size) }, // not the left neighbour (size > 2)
		func(h *header) { h.kind = 99 },                        // an unknown kind
		func(h *header) { h.kind = kindAck; h.from = left },    // an ack from the wrong side
	}
	for _, v := range variants {
		h := ok
		v(&h)
		if size <= 2 && h.from != ok.from && h.from < uint32(size) && h.from != uint32(rank) {
			continue // with two ranks the other rank is the left neighbour
		}
		out = append(out, forged(h, nil, payload))
	}
	return out
}

// Frames of an older generation, queued before the collective starts, and a
// flood of foreign frames during it, never reach a sum.
func TestStaleAndForeignFramesNATS(t *testing.T) {
	s := runNATSServer(t)
	const n, L = 4, 3001
	gen := testGeneration("jobf", 5, n)
	ts := natsTransports(t, s, gen)
	pub := natsConnect(t, s.ClientURL())
	rng := rand.New(rand.NewPCG(5, 6))
	job := jobID(gen.Job)
	// An older generation's frames for the very same op and step, on the
	// subjects of the new one.
	for rank := range n {
		for _, f := range junkFrames(rng, job, gen.Number, rank, n, L) {
			pub.Publish(ringSubject(gen.Job, gen.Number, rank), f)
		}
	}
	pub.Flush()
	rings := newRings(t, gen, ts, testConfig(t))
	stop := make(chan struct{})
	var flooded atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(7, 8))
		for {
			select {
			case <-stop:
				return
			default:
			}
			for rank := range n {
				for _, f := range junkFrames(rng, job, gen.Number, rank, n, L) {
					pub.Publish(ringSubject(gen.Job, gen.Number, rank), f)
					flooded.Add(1)
				}
			}
			pub.Flush()
		}
	}()
	for op := range 3 {
		reduceAndCheck(t, rings, L, uint64(op))
	}
	close(stop)
	wg.Wait()
	var dropped uint64
	for _, r := range rings {
		dropped += r.Stats().Dropped
	}
	t.Logf("flooded %d frames, rings dropped %d", flooded.Load(), dropped)
	if dropped == 0 {
		t.Fatal("no frame was dropped: the flood did not reach the rings")
	}
}

// Frames of an earlier op of the same generation (a late duplicate, say)
// are dropped as stale.
func TestStaleOpFramesInmem(t *testing.T) {
	const n, L = 3, 999
	gen := testGeneration("jobo", 2, n)
	net := NewInmemNetwork(n, 0)
	ts := make([]Transport, n)
	for i := range ts {
		ts[i] = net.Transport(i)
	}
	rings := newRings(t, gen, ts, testConfig(t))
	reduceAndCheck(t, rings, L, 1)
	rng := rand.New(rand.NewPCG(1, 1))
	for rank := range n {
		for _, f := range junkFrames(rng, jobID(gen.Job), gen.Number, rank, n, L) {
			net.Inject(rank, f)
		}
		// The first op's first frame again, from the left neighbour.
		h := header{kind: kindReduceScatter, dtype: Float32, job: jobID(gen.Job), gen: gen.Number, op: 1,
			from: uint32((rank + n - 1) % n), count: 4, total: L}
		net.Inject(rank, forged(h, nil, f32Bytes([]float32{1, 2, 3, 4})))
	}
	reduceAndCheck(t, rings, L, 2)
	var stale, dropped uint64
	for _, r := range rings {
		stale += r.Stats().Stale
		dropped += r.Stats().Dropped
	}
	if stale < n || dropped == 0 {
		t.Fatalf("stale %d (want >= %d), dropped %d (want > 0)", stale, n, dropped)
	}
}

// A TCP peer without the job token is refused and logged, and the
// all-reduce running meanwhile is untouched.
func TestTCPWrongTokenRefused(t *testing.T) {
	const n, L = 3, 20000
	gen, nodes := tcpNodes(t, testGeneration("jobt", 4, n), testToken)
	var logs syncBuffer
	victim, err := ListenTCP("127.0.0.1:0", TCPConfig{Job: gen.Job, Token: []byte(testToken), Logger: slogTo(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { victim.Close() })
	nodes[1] = victim
	gen.Members[1].Addr = victim.Addr()
	_, ts := tcpTransports(t, gen, nodes)
	rings := newRings(t, gen, ts, testConfig(t))

	attacker, err := ListenTCP("127.0.0.1:0", TCPConfig{Job: gen.Job, Token: []byte("not-the-token"), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { attacker.Close() })
	at, err := attacker.Join(gen, 0)
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	var once sync.Once
	rings[1].hook = func(kind, uint32) { once.Do(func() { close(started) }) }
	attacked := make(chan error, 1)
	go func() {
		<-started
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := at.Connect(ctx, 1) // claims rank 0 with the wrong token
		if c, derr := net.Dial("tcp", victim.Addr()); derr == nil {
			c.Write([]byte(strings.Repeat("garbage!", 8)))
			c.Close()
		}
		attacked <- err
	}()
	reduceAndCheck(t, rings, L, 3)
	if err := <-attacked; !errors.Is(err, ErrAuth) {
		t.Fatalf("attacker connected: %v", err)
	}
	reduceAndCheck(t, rings, L, 4)
	deadline := time.Now().Add(5 * time.Second)
	for victim.Rejected() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if victim.Rejected() < 2 || !strings.Contains(logs.String(), "refused TCP connection") {
		t.Fatalf("rejected %d, log %q", victim.Rejected(), logs.String())
	}
}

// A node that moved to a newer generation refuses the older one: the dialer
// learns it is stale.
func TestTCPStaleGeneration(t *testing.T) {
	gen, nodes := tcpNodes(t, testGeneration("jobst", 1, 2), testToken)
	old, err := nodes[0].Join(gen, 0)
	if err != nil {
		t.Fatal(err)
	}
	next := gen
	next.Number = 2
	if _, err := nodes[1].Join(next, 1); err != nil {
		t.Fatal(err)
	}
	err = old.Connect(ctxTimeout(t, 5*time.Second), 1)
	if !errors.Is(err, ErrStale) {
		t.Fatalf("got %v, want ErrStale", err)
	}
	r, err := NewRing(gen, 0, old, testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, err = r.AllReduce(ctxTimeout(t, 5*time.Second), make([]float32, 10), nil)
	if !errors.Is(err, ErrStale) {
		t.Fatalf("all-reduce of a stale generation: %v", err)
	}
}

// NATS subjects carry job and generation, so a ring never even receives the
// frames of another generation's ring on the same server.
func TestNATSSubjects(t *testing.T) {
	if got := ringSubject("job-1", 12, 3); got != "vlp.job-1.ring.12.3" {
		t.Fatalf("subject %q", got)
	}
	s := runNATSServer(t)
	nc := natsConnect(t, s.ClientURL())
	if _, err := NewNATSTransport(nc, Generation{Job: "a.b", Members: []Member{{}}}, 0); !errors.Is(err, ErrConfig) {
		t.Fatalf("job with a dot: %v", err)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

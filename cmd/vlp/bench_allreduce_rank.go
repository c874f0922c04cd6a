package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/urfave/cli/v2"

	"github.com/e2evlp/vlp/allreduce"
)

// One rank of `vlp bench allreduce`, a process of its own. It says hello on
// <prefix>.hello with its TCP address, then runs the commands the parent
// sends to <prefix>.cmd.<rank> and replies with timings. It exits on the
// "exit" command or when its stdin (a pipe from the parent) closes.

// benchEnvToken carries the job token from the parent, off the command line.
const benchEnvToken = "VLP_BENCH_TOKEN"

var benchAllreduceRankCommand = &cli.Command{
	Name:   "allreduce-rank",
	Usage:  "one rank of `vlp bench allreduce` (started by it)",
	Hidden: true,
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "nats", Required: true},
		&cli.StringFlag{Name: "prefix", Required: true},
		&cli.StringFlag{Name: "job", Required: true},
		&cli.IntFlag{Name: "rank", Required: true},
		&cli.StringFlag{Name: "listen", Value: "127.0.0.1:0", Usage: "TCP ring listeners' address (its host part is the rank's host)"},
		&cli.StringFlag{Name: "shm-dir", Usage: "shared-memory directory (default /dev/shm); a simulated host's own"},
	},
	Action: runBenchRank,
}

// benchHello is a rank's first message.
type benchHello struct {
	Rank   int               `json:"rank"`
	Addrs  map[string]string `json:"addrs"` // TCP listener per ring security (auth, encrypt, plain)
	Server string            `json:"server"`
}

// benchCmd is one command from the parent.
type benchCmd struct {
	// Op is setup (build Rings and warm each up), op (time one all-reduce
	// on ring Ring), teardown, raw-prepare, raw-go, or exit.
	Op     string               `json:"op"`
	Rings  []benchRing          `json:"rings,omitempty"`
	Ring   uint64               `json:"ring,omitempty"` // a ring's generation number
	Gen    allreduce.Generation `json:"gen"`            // raw: the subjects' generation
	Bytes  int64                `json:"bytes"`
	Iters  int                  `json:"iters,omitempty"` // raw: rounds
	Config benchConfig          `json:"config"`
}

// benchRing is one ring of a setup: each its own generation.
type benchRing struct {
	Gen       allreduce.Generation `json:"gen"`
	Transport string               `json:"transport"`
	Wire      string               `json:"wire"`
}

type benchConfig struct {
	ChunkBytes    int  `json:"chunk_bytes"`
	WindowBytes   int  `json:"window_bytes"`
	SharedControl bool `json:"shared_control,omitempty"` // NATS control frames on the data connection
}

// benchReply is a rank's answer.
type benchReply struct {
	Seconds  []float64 `json:"seconds,omitempty"`  // timed rounds
	Checksum uint32    `json:"checksum,omitempty"` // CRC-32 of the result
	Frames   []int64   `json:"frames,omitempty"`   // setup: mean data frame per ring, bytes
	Err      string    `json:"err,omitempty"`
}

func runBenchRank(c *cli.Context) error {
	rank, prefix := c.Int("rank"), c.String("prefix")
	go func() { // the parent's pipe closes when it dies: follow it
		io.Copy(io.Discard, os.Stdin)
		os.Exit(3)
	}()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctl, err := nats.Connect(c.String("nats"), nats.Name(fmt.Sprintf("bench-rank-%d-ctl", rank)))
	if err != nil {
		return err
	}
	defer ctl.Close()
	data, err := nats.Connect(c.String("nats"), nats.Name(fmt.Sprintf("bench-rank-%d", rank)))
	if err != nil {
		return err
	}
	defer data.Close()
	ringCtl, err := nats.Connect(c.String("nats"), nats.Name(fmt.Sprintf("bench-rank-%d-ring-ctl", rank)))
	if err != nil {
		return err
	}
	defer ringCtl.Close()
	r := &benchRank{rank: rank, prefix: prefix, data: data, ringCtl: ringCtl, nodes: map[allreduce.RingSecurity]*allreduce.TCPNode{}, log: log, rings: map[uint64]benchCollective{}, shmDir: c.String("shm-dir")}
	addrs := make(map[string]string)
	for _, sec := range []allreduce.RingSecurity{allreduce.RingAuth, allreduce.RingEncrypt, allreduce.RingPlain} {
		node, err := allreduce.ListenTCP(c.String("listen"), allreduce.TCPConfig{
			Job: c.String("job"), Token: []byte(os.Getenv(benchEnvToken)), Security: sec, Logger: log,
		})
		if err != nil {
			return err
		}
		defer node.Close()
		r.nodes[sec], addrs[sec.String()] = node, node.Addr()
	}
	done := make(chan struct{})
	sub, err := ctl.Subscribe(fmt.Sprintf("%s.cmd.%d", prefix, rank), func(m *nats.Msg) {
		var cmd benchCmd
		if err := json.Unmarshal(m.Data, &cmd); err != nil {
			m.Respond(mustJSON(benchReply{Err: err.Error()}))
			return
		}
		if cmd.Op == "exit" {
			m.Respond(mustJSON(benchReply{}))
			close(done)
			return
		}
		go func() { // long commands must not hold up the control subscription
			r.mu.Lock() // the parent sends one command at a time; be sure
			rep := r.run(cmd)
			r.mu.Unlock()
			m.Respond(mustJSON(rep))
		}()
	})
	if err != nil {
		return err
	}
	defer sub.Unsubscribe()
	hello := mustJSON(benchHello{Rank: rank, Addrs: addrs, Server: data.ConnectedServerName()})
	if err := ctl.Publish(prefix+".hello", hello); err != nil {
		return err
	}
	ctl.Flush()
	<-done
	ctl.Flush()
	return nil
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

type benchRank struct {
	mu      sync.Mutex
	rank    int
	prefix  string
	data    *nats.Conn                                    // the ring's data frames, and the raw measurement
	ringCtl *nats.Conn                                    // the ring's control frames (allreduce.WithControlConn)
	nodes   map[allreduce.RingSecurity]*allreduce.TCPNode // one listener per frame protection
	log     *slog.Logger
	buf     []float32 // one buffer for every ring: ops run one at a time
	rings   map[uint64]benchCollective
	shmDir  string
	raw     *rawState
}

// benchCollective is a flat Ring or a HierRing.
type benchCollective interface {
	AllReduce(ctx context.Context, buf []float32, meta []byte) ([][]byte, error)
	Size() int
	Close() error
}

func (r *benchRank) run(cmd benchCmd) benchReply {
	var rep benchReply
	var err error
	switch cmd.Op {
	case "setup":
		rep.Frames, err = r.setup(cmd)
	case "op":
		var secs float64
		secs, rep.Checksum, err = r.op(cmd.Ring)
		rep.Seconds = []float64{secs}
	case "teardown":
		r.teardown()
	case "raw-prepare":
		err = r.rawPrepare(cmd)
	case "raw-go":
		rep.Seconds, err = r.rawGo()
	default:
		err = fmt.Errorf("unknown op %q", cmd.Op)
	}
	if err != nil {
		rep.Err = err.Error()
	}
	return rep
}

// setup builds the rings of one size and warms each up with one all-reduce
// (connections, pages), in the same order on every rank.
func (r *benchRank) setup(cmd benchCmd) ([]int64, error) {
	r.teardown()
	elems := int(cmd.Bytes / 4)
	if cap(r.buf) < elems {
		r.buf = nil // let the old one go first
		r.buf = make([]float32, elems)
	}
	r.buf = r.buf[:elems]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var frames []int64
	for _, br := range cmd.Rings {
		wire, err := allreduce.ParseDType(br.Wire)
		if err != nil {
			return nil, err
		}
		kind, sec := benchTCPSecurity(br.Transport)
		ep := allreduce.Endpoints{NATS: r.data, NATSControl: r.ringCtl, TCP: r.nodes[sec], Logger: r.log, Shm: allreduce.ShmConfig{Dir: r.shmDir}}
		if cmd.Config.SharedControl {
			ep.NATSControl = nil
		}
		rcfg := allreduce.Config{Wire: wire, ChunkBytes: cmd.Config.ChunkBytes, WindowBytes: cmd.Config.WindowBytes, Logger: r.log}
		var ring benchCollective
		if kind == allreduce.KindHier {
			ep.NATS, ep.NATSControl = nil, nil // the leaders' ring over TCP, as the flat tcp ring
			if ring, err = allreduce.NewHierRing(ctx, br.Gen, r.rank, ep, rcfg); err != nil {
				return nil, err
			}
		} else {
			tr, err := allreduce.NewTransport(ctx, kind, br.Gen, r.rank, ep)
			if err != nil {
				return nil, err
			}
			if ring, err = allreduce.NewRing(br.Gen, r.rank, tr, rcfg); err != nil {
				tr.Close()
				return nil, err
			}
		}
		r.rings[br.Gen.Number] = ring
		if _, _, err := r.op(br.Gen.Number); err != nil {
			return nil, fmt.Errorf("warm-up of %s %s: %w", br.Transport, br.Wire, err)
		}
		var frame int64
		if fr, ok := ring.(*allreduce.Ring); ok {
			st := fr.Stats()
			frame = int64(st.BytesSent / max(st.FramesSent, 1))
		}
		frames = append(frames, frame)
	}
	return frames, nil
}

// op times one all-reduce and checks it: every rank starts with rank+1
// everywhere, so every element ends as N(N+1)/2, exact in float32 and in
// bfloat16 (every partial sum is a small integer).
func (r *benchRank) op(gen uint64) (float64, uint32, error) {
	ring := r.rings[gen]
	if ring == nil {
		return 0, 0, fmt.Errorf("no ring for generation %d", gen)
	}
	for i := range r.buf {
		r.buf[i] = float32(r.rank + 1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	if _, err := ring.AllReduce(ctx, r.buf, nil); err != nil {
		return 0, 0, err
	}
	secs := time.Since(start).Seconds()
	n := ring.Size()
	want := float32(n * (n + 1) / 2)
	for i, v := range r.buf {
		if v != want {
			return 0, 0, fmt.Errorf("element %d is %v, want %v", i, v, want)
		}
	}
	return secs, checksum(r.buf), nil
}

func (r *benchRank) teardown() {
	for g, ring := range r.rings {
		ring.Close()
		delete(r.rings, g)
	}
}

// checksum is the CRC-32 of the buffer's bytes, without copying it whole.
func checksum(x []float32) uint32 {
	var b [1 << 16]byte
	var c uint32
	for len(x) > 0 {
		n := min(len(x), len(b)/4)
		for i, v := range x[:n] {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
		}
		c = crc32.Update(c, crc32.IEEETable, b[:4*n])
		x = x[n:]
	}
	return c
}

// rawState is one raw NATS measurement: this rank publishes `rounds` rounds
// of `round` bytes to its right neighbour's subject, in frames of the ring's
// size, while receiving as much from its left — the ring's traffic pattern
// with no ring code, flow controlled by the same window so the server never
// drops a slow consumer.
type rawState struct {
	round, frame, window int64
	rounds               int
	right                int
	sub, ackSub          *nats.Subscription
	recvDone             []time.Time // when the k-th round's bytes had all arrived
	got                  chan struct{}
	acked                atomic.Int64
	ackSignal            chan struct{}
	subjData, subjAck    func(rank int) string
}

func (r *benchRank) rawPrepare(cmd benchCmd) error {
	n := cmd.Gen.Size()
	left, right := (r.rank+n-1)%n, (r.rank+1)%n
	frame := int64(cmd.Config.ChunkBytes) // the caller passes the ring's mean frame
	s := &rawState{
		round: (cmd.Bytes + frame - 1) / frame * frame, frame: frame, window: int64(cmd.Config.WindowBytes),
		rounds: cmd.Iters, right: right, got: make(chan struct{}), ackSignal: make(chan struct{}, 1),
		recvDone: make([]time.Time, cmd.Iters),
		subjData: func(k int) string { return fmt.Sprintf("%s.raw.%d.%d", r.prefix, cmd.Gen.Number, k) },
		subjAck:  func(k int) string { return fmt.Sprintf("%s.rawack.%d.%d", r.prefix, cmd.Gen.Number, k) },
	}
	total := s.round * int64(s.rounds)
	var consumed, lastAck int64
	var err error
	s.sub, err = r.data.Subscribe(s.subjData(r.rank), func(m *nats.Msg) {
		before := consumed
		consumed += int64(len(m.Data))
		if k := int(consumed / s.round); k > int(before/s.round) && k <= s.rounds {
			s.recvDone[k-1] = time.Now()
		}
		if consumed-lastAck >= s.window/4 || consumed >= total {
			lastAck = consumed
			r.data.Publish(s.subjAck(left), binary.LittleEndian.AppendUint64(nil, uint64(consumed)))
		}
		if consumed >= total && before < total {
			close(s.got)
		}
	})
	if err != nil {
		return err
	}
	s.sub.SetPendingLimits(-1, 512<<20)
	s.ackSub, err = r.data.Subscribe(s.subjAck(r.rank), func(m *nats.Msg) {
		if len(m.Data) == 8 {
			s.acked.Store(int64(binary.LittleEndian.Uint64(m.Data)))
			select {
			case s.ackSignal <- struct{}{}:
			default:
			}
		}
	})
	if err != nil {
		return err
	}
	r.raw = s
	return r.data.FlushTimeout(10 * time.Second)
}

// rawGo runs a prepared measurement and returns the seconds of each round:
// a round ends when this rank has sent and received its bytes.
func (r *benchRank) rawGo() ([]float64, error) {
	s := r.raw
	if s == nil {
		return nil, errors.New("raw-go before raw-prepare")
	}
	defer func() { s.sub.Unsubscribe(); s.ackSub.Unsubscribe(); r.raw = nil }()
	msg := make([]byte, s.frame)
	deadline := time.After(10 * time.Minute)
	sendDone := make([]time.Time, s.rounds)
	start := time.Now()
	for sent := int64(0); sent < s.round*int64(s.rounds); {
		for sent-s.acked.Load()+s.frame > s.window && sent > s.acked.Load() {
			select {
			case <-s.ackSignal:
			case <-deadline:
				return nil, errors.New("raw: no acknowledgement for 10 minutes")
			}
		}
		if err := r.data.Publish(s.subjData(s.right), msg); err != nil {
			return nil, err
		}
		if sent += s.frame; sent%s.round == 0 {
			sendDone[sent/s.round-1] = time.Now()
		}
	}
	select {
	case <-s.got:
	case <-deadline:
		return nil, errors.New("raw: did not receive everything in 10 minutes")
	}
	secs := make([]float64, s.rounds)
	prev := start
	for k := range secs {
		end := sendDone[k]
		if s.recvDone[k].After(end) {
			end = s.recvDone[k]
		}
		secs[k] = end.Sub(prev).Seconds()
		prev = end
	}
	return secs, nil
}

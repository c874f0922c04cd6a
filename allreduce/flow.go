package allreduce

import (
	"context"
	"sync"
)

// credit is the sender's side of the window toward the right neighbour: it
// may have at most `window` bytes sent and not yet acknowledged (one frame is
// always allowed, so a frame larger than the window cannot wedge the ring).
// The receiver acknowledges cumulatively every window/8 bytes it consumed
// (and repeats the count in every heartbeat, so a lost acknowledgement
// cannot leave a sender waiting for good),
// so a receiver's backlog — in nats-server's outbound buffer, in the socket,
// in the Ring's queue — never exceeds the window.
type credit struct {
	mu          sync.Mutex
	sent, acked uint64
	window      uint64
	signal      chan struct{}
}

func (c *credit) init(window uint64) {
	c.window = window
	c.signal = make(chan struct{}, 1)
}

// acquire waits until n more bytes fit in the window, ctx is done, or the
// ring failed.
func (c *credit) acquire(ctx context.Context, failed <-chan struct{}, n uint64) error {
	for {
		c.mu.Lock()
		inflight := c.sent - c.acked
		if inflight == 0 || inflight+n <= c.window {
			c.sent += n
			c.mu.Unlock()
			return nil
		}
		c.mu.Unlock()
		select {
		case <-c.signal:
		case <-ctx.Done():
			return ctx.Err()
		case <-failed:
			return errRingFailed
		}
	}
}

// ack records that the receiver consumed `total` bytes in all. A forged or
// late ack cannot move past what was sent.
func (c *credit) ack(total uint64) {
	c.mu.Lock()
	if total > c.sent {
		total = c.sent
	}
	if total > c.acked {
		c.acked = total
	}
	c.mu.Unlock()
	c.wake()
}

func (c *credit) wake() {
	select {
	case c.signal <- struct{}{}:
	default:
	}
}

// sendTask asks the sender to send a range of the op's buffer to the right
// neighbour, split into chunks; or, with barrier set, to report that every
// earlier task is done.
type sendTask struct {
	op       *Op
	kind     kind
	step     uint32
	base     int // start of the segment in the buffer, in elements (bytes for broadcast)
	off, cnt int // the range within the segment
	metaRank int // whose metadata rides on the first chunk, or -1
	barrier  chan error
	fwd      Frame  // a received frame to pass on as it is, instead of a range
	seq      uint64 // position in the queue, counted by the runner
}

// sendLoop runs the tasks in order. It runs beside the runner so that a rank
// receives while it sends: the ring's sends never wait on their own receives.
func (r *Ring) sendLoop() {
	defer r.wg.Done()
	for {
		st, err := r.sends.pop(r.life)
		if err != nil {
			return
		}
		if st.barrier != nil {
			st.barrier <- nil
		} else if err := r.sendRange(st); err != nil {
			r.fail(r.opError(st.op, err), true)
		}
		r.sentSeq.Store(st.seq)
		select {
		case r.sentSignal <- struct{}{}:
		default:
		}
	}
}

// sendRange sends one task's range, chunk by chunk, each within the window.
func (r *Ring) sendRange(st sendTask) error {
	op := st.op
	select {
	case <-r.ready:
	case <-op.ctx.Done():
		st.fwd.Release()
		return op.ctx.Err()
	case <-r.failed:
		st.fwd.Release()
		return errRingFailed
	}
	if st.fwd.Data != nil {
		defer st.fwd.Release()
		size := uint64(len(st.fwd.Data))
		if err := r.flow.acquire(op.ctx, r.failed, size); err != nil {
			return err
		}
		if err := r.t.Send(op.ctx, r.right, st.fwd.Data); err != nil {
			return err
		}
		r.stats.framesSent.Add(1)
		r.stats.bytesSent.Add(size)
		return nil
	}
	dtype, total := op.wireType(r.cfg.Wire), op.total()
	chunk := op.chunkBytes / dtype.size()
	for p := 0; ; {
		c := min(st.cnt-p, chunk)
		h := header{
			kind: st.kind, dtype: dtype, job: r.job, gen: r.gen.Number, op: op.seq,
			from: uint32(r.rank), step: st.step, offset: uint64(st.off + p), count: uint32(c), total: uint64(total),
		}
		var meta []byte
		if p == 0 && st.metaRank >= 0 {
			meta = op.metas[st.metaRank]
			h.metaLen = uint32(len(meta))
		}
		pad := zeros[:pad8(len(meta))-len(meta)]
		at := st.base + st.off + p
		h.put(r.frame[:headerSize])
		var parts [][]byte
		switch dtype {
		case BFloat16:
			// Encode straight into the frame: one contiguous part, which
			// NATS publishes without assembling it first.
			o := headerSize + copy(r.frame[headerSize:], meta)
			o += copy(r.frame[o:], pad)
			encodeBF16(bytesU16(r.frame[o:o+2*c]), op.buf[at:at+c])
			parts = [][]byte{r.frame[:o+2*c]}
		case Float32:
			parts = [][]byte{r.frame[:headerSize], meta, pad, f32Bytes(op.buf[at : at+c])}
		default:
			parts = [][]byte{r.frame[:headerSize], meta, pad, op.bytes[at : at+c]}
		}
		size := uint64(totalLen(parts))
		if err := r.flow.acquire(op.ctx, r.failed, size); err != nil {
			return err
		}
		if err := r.t.Send(op.ctx, r.right, parts...); err != nil {
			return err
		}
		r.stats.framesSent.Add(1)
		r.stats.bytesSent.Add(size)
		if p += c; p >= st.cnt {
			return nil
		}
	}
}

// Buffers are cut finer than Config.ChunkBytes when that keeps the pipeline
// full: a frame is forwarded only once it has arrived whole, so filling the
// ring costs about one frame time per hop, and over NATS two (the server
// stores and forwards each frame). With k chunks per segment the ring runs at
// about k/(k+1) of the link's rate (k/(k+2) relayed) — 32 chunks keep a NATS
// ring within 6% of the relay's throughput. Over direct TCP per-frame costs
// weigh more than the fill, so 4 chunks per segment suffice there; and no
// frame is cut below 64 KiB.
const (
	pipelineChunksDirect  = 4
	pipelineChunksRelayed = 32
	minChunkBytes         = 64 << 10
)

// relayed is implemented by transports whose frames to the right neighbour
// a server stores and forwards.
type relayed interface {
	relayedTo(rank int) bool
}

// opChunk is the payload bytes per frame for op.
func (r *Ring) opChunk(op *Op) int {
	if op.kind == opBroadcast && r.rank != op.root {
		return r.chunkBytes // forward what the root cut
	}
	k := pipelineChunksDirect
	if rt, ok := r.t.(relayed); ok && rt.relayedTo(r.right) {
		k = pipelineChunksRelayed
	}
	seg := op.total() * op.wireType(r.cfg.Wire).size() / r.size
	c := min(max(seg/k, minChunkBytes), r.chunkBytes) &^ 7
	return max(c, 8)
}

// send queues a task and returns its position; it never blocks.
func (r *Ring) send(st sendTask) uint64 {
	r.taskSeq++
	st.seq = r.taskSeq
	r.sends.push(st)
	return st.seq
}

// waitSent returns once the sender has finished task seq and every task
// before it. The runner calls it before overwriting a range that an earlier
// task reads: the ring's data flow already orders the two (the range comes
// back only after the neighbours received it), but only through the network,
// which the race detector cannot see.
func (r *Ring) waitSent(ctx context.Context, seq uint64) error {
	for r.sentSeq.Load() < seq {
		select {
		case <-r.sentSignal:
		case <-ctx.Done():
			return ctx.Err()
		case <-r.failed:
			return errRingFailed
		}
	}
	return nil
}

// waitSends returns once every task queued for op has been sent.
func (r *Ring) waitSends(op *Op) error {
	done := make(chan error, 1)
	r.send(sendTask{op: op, barrier: done})
	select {
	case err := <-done:
		if err != nil {
			return errRingFailed
		}
		return nil
	case <-op.ctx.Done():
		return op.ctx.Err()
	}
}

// consume acknowledges and releases a data frame from the left neighbour.
func (r *Ring) consume(in inFrame) {
	r.acknowledge(in)
	in.f.Release()
}

// acknowledge counts a consumed data frame and acknowledges the bytes once
// enough have accumulated. A frame passed on is consumed too: the window
// bounds what waits at the receiver, not who holds the buffer.
func (r *Ring) acknowledge(in inFrame) {
	n := uint64(len(in.f.Data))
	r.stats.framesRecv.Add(1)
	r.stats.bytesRecv.Add(n)
	consumed := r.consumed.Add(n)
	if consumed-r.ackedSent >= r.ackEvery {
		r.ackedSent = consumed
		r.sendControl(r.left, kindAck, 0, 0, consumed)
	}
}

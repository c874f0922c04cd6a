package allreduce

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// errRingFailed tells a waiter that the Ring failed; Ring.Err has the cause.
var errRingFailed = errors.New("allreduce: ring failed")

type opKind uint8

const (
	opAllReduce opKind = 1 + iota
	opBroadcast
)

// Op is a collective started with StartAllReduce; Wait returns its result.
type Op struct {
	kind       opKind
	ctx        context.Context
	cancel     context.CancelFunc
	seq        uint64 // set by the runner
	chunkBytes int    // payload bytes per frame, set by the runner

	buf   []float32 // all-reduce
	meta  []byte
	metas [][]byte // per-rank metadata, filled by the runner

	bytes []byte // broadcast: the root's data, then each rank's copy
	root  int
	fixed bool // broadcast into a buffer of the root's exact length

	once sync.Once
	done chan struct{}
	err  error
}

// Wait blocks until the collective is done and returns every rank's metadata
// (index = rank; this rank's own included) or the error that finished the Ring.
func (op *Op) Wait() ([][]byte, error) {
	<-op.done
	return op.metas, op.err
}

// Done is closed when the collective is done.
func (op *Op) Done() <-chan struct{} { return op.done }

func (op *Op) finish(err error) {
	op.once.Do(func() {
		op.err = err
		if op.cancel != nil {
			op.cancel()
		}
		close(op.done)
	})
}

func (op *Op) total() int {
	if op.kind == opBroadcast {
		return len(op.bytes)
	}
	return len(op.buf)
}

func (op *Op) wireType(wire DType) DType {
	if op.kind == opBroadcast {
		return Bytes
	}
	return wire
}

// StartAllReduce queues an all-reduce (sum) of buf in place, with meta
// gathered from every rank, and returns at once: the bucket API. A worker
// starts the buckets of its gradients as backward produces them, in the same
// order on every rank, and waits for all of them before the optimizer step;
// they run one after another, overlapping with the caller's computation. buf
// and meta must not be touched until the Op is done. Without a deadline on ctx
// the collective gets Config.Timeout from now.
func (r *Ring) StartAllReduce(ctx context.Context, buf []float32, meta []byte) *Op {
	op := &Op{kind: opAllReduce, buf: buf, meta: meta, done: make(chan struct{})}
	r.start(ctx, op)
	return op
}

// AllReduce sums buf in place across the ranks; every rank ends with the same
// bits. It returns every rank's meta (index = rank).
func (r *Ring) AllReduce(ctx context.Context, buf []float32, meta []byte) ([][]byte, error) {
	return r.StartAllReduce(ctx, buf, meta).Wait()
}

// AllGather returns every rank's meta (index = rank).
func (r *Ring) AllGather(ctx context.Context, meta []byte) ([][]byte, error) {
	return r.AllReduce(ctx, nil, meta)
}

// Broadcast sends root's data to every rank, pipelined along the ring. On the
// other ranks data is a buffer to reuse (nil is fine): the result is data
// resliced when its capacity suffices, else a new slice.
func (r *Ring) Broadcast(ctx context.Context, root int, data []byte) ([]byte, error) {
	op := &Op{kind: opBroadcast, bytes: data, root: root, done: make(chan struct{})}
	r.start(ctx, op)
	if _, err := op.Wait(); err != nil {
		return nil, err
	}
	return op.bytes, nil
}

// BroadcastFloat32 copies root's buf into every rank's buf, which must have
// the same length on every rank (parameters, optimizer state).
func (r *Ring) BroadcastFloat32(ctx context.Context, root int, buf []float32) error {
	op := &Op{kind: opBroadcast, bytes: f32Bytes(buf), root: root, fixed: true, done: make(chan struct{})}
	r.start(ctx, op)
	_, err := op.Wait()
	return err
}

func (r *Ring) start(ctx context.Context, op *Op) {
	if _, ok := ctx.Deadline(); ok {
		op.ctx, op.cancel = context.WithCancel(ctx)
	} else {
		op.ctx, op.cancel = context.WithTimeout(ctx, r.cfg.Timeout)
	}
	r.ops.push(op)
}

// runLoop runs the queued collectives one at a time.
func (r *Ring) runLoop() {
	defer r.wg.Done()
	for {
		op, err := r.ops.pop(r.life)
		if err != nil {
			return
		}
		r.run(op)
	}
}

func (r *Ring) run(op *Op) {
	if err := r.Err(); err != nil {
		op.finish(err)
		return
	}
	r.seq++
	op.seq = r.seq
	r.running.Store(op.seq)
	defer r.running.Store(0)
	err := r.checkLeft(op.seq)
	if err == nil {
		err = r.checkOp(op)
	}
	if err == nil && r.size > 1 {
		switch op.kind {
		case opAllReduce:
			if lr, ok := r.t.(localReducer); ok && lr.reducesLocally() {
				err = r.runLocalAllReduce(op, lr)
			} else {
				err = r.runAllReduce(op)
			}
		case opBroadcast:
			err = r.runBroadcast(op)
		}
		if err == nil {
			err = r.waitSends(op)
		}
	}
	if err != nil {
		r.fail(r.opError(op, err), true)
		op.finish(r.Err())
		return
	}
	r.lastDone.Store(op.seq)
	r.stats.ops.Add(1)
	op.finish(nil)
}

// checkOp validates a caller's arguments; a bad call fails the whole ring,
// since the other ranks are running this op too.
func (r *Ring) checkOp(op *Op) error {
	switch {
	case len(op.meta) > r.cfg.MaxMeta:
		return configErr("metadata of %d bytes exceeds Config.MaxMeta=%d", len(op.meta), r.cfg.MaxMeta)
	case op.kind == opBroadcast && (op.root < 0 || op.root >= r.size):
		return configErr("broadcast root %d outside [0, %d)", op.root, r.size)
	}
	op.chunkBytes = r.opChunk(op)
	if op.kind == opAllReduce {
		op.metas = make([][]byte, r.size)
		op.metas[r.rank] = append([]byte(nil), op.meta...)
	}
	return nil
}

// opError turns what stopped an op into the error its caller sees: the
// Ring's failure when there is one, else the op's own deadline or cancel.
func (r *Ring) opError(op *Op, err error) error {
	if e := r.Err(); e != nil {
		return e
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: op %d of generation %d (rank %d)", ErrDeadline, op.seq, r.gen.Number, r.rank)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("%w: op %d cancelled by the caller of rank %d", ErrAborted, op.seq, r.rank)
	}
	return err
}

// segment returns the start and length of segment j of a buffer of n
// elements cut into `size` nearly equal parts.
func segment(n, size, j int) (start, length int) {
	base, rem := n/size, n%size
	start = j*base + min(j, rem)
	length = base
	if j < rem {
		length++
	}
	return start, length
}

func mod(a, n int) int { return ((a % n) + n) % n }

// runAllReduce is the ring: reduce-scatter, then all-gather.
//
// Segment j starts at rank j, which sends its own values; each following rank
// adds its values to what it received and passes the sum on, so segment j is
// reduced in the order rank j, j+1, …, j−1 — the same order in every run —
// and finished by rank j−1, which sends it around once more. Every chunk is
// forwarded as soon as it is reduced: the steps overlap, not just the chunks.
// A rank adds into the frame it received and passes that frame on (its
// header retagged), so a chunk is copied or encoded only when it enters the
// ring. The metadata travels the same way, riding on the first frame of each
// reduce-scatter step: rank j's metadata with segment j.
func (r *Ring) runAllReduce(op *Op) error {
	n, L, bf16 := r.size, len(op.buf), r.cfg.Wire == BFloat16
	// rsSent[s] is the last task that sends reduce-scatter step s: it may read
	// segment r−s of the buffer, which all-gather step s overwrites.
	rsSent := make([]uint64, n)
	start, length := segment(L, n, r.rank)
	rsSent[0] = r.send(sendTask{op: op, kind: kindReduceScatter, step: 0, base: start, cnt: length, metaRank: r.rank})
	for s := 0; s < n-1; s++ {
		j := mod(r.rank-s-1, n)
		start, length := segment(L, n, j)
		last := s == n-2
		err := r.recvStep(op, kindReduceScatter, uint32(s), 0, length, func(in *inFrame, off, cnt int, first bool) bool {
			if first {
				op.metas[j] = append([]byte(nil), in.meta...)
			}
			own := op.buf[start+off : start+off+cnt]
			if r.canForward(in) {
				if bf16 {
					accumBF16(bytesU16(in.payload), own)
				} else {
					addF32(bytesF32(in.payload), own)
				}
				if !last {
					rsSent[s+1] = r.forward(op, in, kindReduceScatter, uint32(s+1))
					return true
				}
				// Segment j is finished here: keep it, and send it around.
				if bf16 {
					decodeBF16(own, bytesU16(in.payload))
				} else {
					copy(own, bytesF32(in.payload))
				}
				r.forward(op, in, kindAllGather, 0)
				return true
			}
			// The frame is too large for this rank's transport: reduce into
			// the buffer and let the sender cut it anew.
			if bf16 {
				addBF16(own, bytesU16(in.payload))
			} else {
				addF32(own, bytesF32(in.payload))
			}
			metaRank := -1
			if first {
				metaRank = j
			}
			if !last {
				rsSent[s+1] = r.send(sendTask{op: op, kind: kindReduceScatter, step: uint32(s + 1), base: start, off: off, cnt: cnt, metaRank: metaRank})
				return false
			}
			if bf16 {
				roundBF16(own) // hold exactly what the other ranks will decode
			}
			r.send(sendTask{op: op, kind: kindAllGather, step: 0, base: start, off: off, cnt: cnt, metaRank: -1})
			return false
		})
		if err != nil {
			return err
		}
	}
	for s := 0; s < n-1; s++ {
		j := mod(r.rank-s, n)
		start, length := segment(L, n, j)
		if err := r.waitSent(op.ctx, rsSent[s]); err != nil {
			return err
		}
		err := r.recvStep(op, kindAllGather, uint32(s), 0, length, func(in *inFrame, off, cnt int, first bool) bool {
			dst := op.buf[start+off : start+off+cnt]
			if bf16 {
				decodeBF16(dst, bytesU16(in.payload))
			} else {
				copy(dst, bytesF32(in.payload))
			}
			if s == n-2 {
				return false
			}
			if r.canForward(in) {
				r.forward(op, in, kindAllGather, uint32(s+1))
				return true
			}
			r.send(sendTask{op: op, kind: kindAllGather, step: uint32(s + 1), base: start, off: off, cnt: cnt, metaRank: -1})
			return false
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// runBroadcast forwards the root's buffer along the ring, root → root+1 → …
// → root−1, chunk by chunk: each link carries the data once. The last rank
// closes the ring with an empty frame past the end, so the root returns only
// once every rank has everything.
func (r *Ring) runBroadcast(op *Op) error {
	if r.rank == op.root {
		n := len(op.bytes)
		r.send(sendTask{op: op, kind: kindBroadcast, step: uint32(op.root), cnt: n, metaRank: -1})
		return r.recvStep(op, kindBroadcast, uint32(op.root), n, n, func(*inFrame, int, int, bool) bool { return false })
	}
	last := r.right == op.root
	err := r.recvStep(op, kindBroadcast, uint32(op.root), 0, -1, func(in *inFrame, off, cnt int, first bool) bool {
		copy(op.bytes[off:off+cnt], in.payload)
		switch {
		case last:
			return false
		case r.canForward(in):
			r.forward(op, in, kindBroadcast, uint32(op.root))
			return true
		}
		r.send(sendTask{op: op, kind: kindBroadcast, step: uint32(op.root), off: off, cnt: cnt, metaRank: -1})
		return false
	})
	if err == nil && last {
		r.send(sendTask{op: op, kind: kindBroadcast, step: uint32(op.root), off: len(op.bytes), metaRank: -1})
	}
	return err
}

// canForward says whether a received frame may go on as it is.
func (r *Ring) canForward(in *inFrame) bool { return len(in.f.Data) <= r.t.MaxFrame() }

// forward retags a received frame as this rank's step `step` of kind k and
// hands it to the sender, which releases it once sent.
func (r *Ring) forward(op *Op, in *inFrame, k kind, step uint32) uint64 {
	retag(in.f.Data, k, uint32(r.rank), step)
	return r.send(sendTask{op: op, fwd: in.f, metaRank: -1})
}

// maxBroadcast bounds the length a broadcast frame may announce, so a
// malformed frame cannot make a rank allocate without limit.
const maxBroadcast = 1 << 40

// recvStep receives the frames of one ring step from the left neighbour, in
// order, and hands each to handle. Frames of earlier ops are stale and
// dropped; frames of this op that do not continue the step are dropped too
// (they are forged or foreign: a well-behaved left neighbour sends exactly
// the expected sequence). The step covers [cursor, length) of the segment;
// length < 0 means a broadcast whose length the first frame announces.
// handle reports whether it kept the frame (handed it to the sender).
func (r *Ring) recvStep(op *Op, k kind, step uint32, cursor, length int, handle func(in *inFrame, off, cnt int, first bool) bool) error {
	dtype := op.wireType(r.cfg.Wire)
	esize := dtype.size()
	first := true
	for first || cursor < length {
		in, err := r.data.pop(op.ctx)
		if err != nil {
			return err
		}
		h := &in.h
		switch {
		case h.op < op.seq:
			r.stats.stale.Add(1)
			r.consume(in)
			continue
		case h.op == op.seq && (h.kind == kindBroadcast) != (k == kindBroadcast):
			r.consume(in)
			return fmt.Errorf("%w: rank %d runs a %v as op %d, this rank a %v", ErrMismatch, r.left, h.kind, op.seq, k)
		case h.op != op.seq || h.kind != k || h.offset != uint64(cursor):
			r.stats.dropped.Add(1)
			r.consume(in)
			continue
		case h.step != step && k == kindBroadcast:
			r.consume(in)
			return fmt.Errorf("%w: rank %d broadcasts from root %d, this rank expects root %d", ErrMismatch, r.left, h.step, step)
		case h.step != step:
			r.stats.dropped.Add(1)
			r.consume(in)
			continue
		}
		if first && length < 0 {
			if h.total > maxBroadcast {
				r.stats.dropped.Add(1)
				r.consume(in)
				continue
			}
			length = int(h.total)
			if op.fixed && length != len(op.bytes) {
				r.consume(in)
				return fmt.Errorf("%w: root %d broadcasts %d bytes, this rank's buffer has %d", ErrMismatch, op.root, length, len(op.bytes))
			}
			if cap(op.bytes) >= length {
				op.bytes = op.bytes[:length]
			} else {
				op.bytes = make([]byte, length)
			}
		} else if h.total != uint64(op.total()) || h.dtype != dtype {
			r.consume(in)
			return fmt.Errorf("%w: rank %d sends %d elements as %v, this rank has %d as %v", ErrMismatch, r.left, h.total, h.dtype, op.total(), dtype)
		}
		cnt := int(h.count)
		if cnt > length-cursor || len(in.payload) != cnt*esize || h.dtype != dtype {
			r.stats.dropped.Add(1)
			r.consume(in)
			continue
		}
		kept := handle(&in, cursor, cnt, first)
		cursor += cnt
		first = false
		if r.hook != nil {
			r.hook(k, step)
		}
		r.acknowledge(in)
		if !kept {
			in.f.Release()
		}
	}
	return nil
}

// inFrame is a data frame waiting for the runner.
type inFrame struct {
	h       header
	meta    []byte
	payload []byte
	f       Frame
}
